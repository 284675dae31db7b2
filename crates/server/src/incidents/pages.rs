//! Pages for incidents and failures: my reports and the lists in my scope
//! with counts, the report form (multipart, with attachments; a form that
//! does not go through re-renders with what was typed and is kept as a
//! draft), an incident's page (the chain with its deadlines, the K27
//! checklist and its forms, the timeline), failure records with the
//! recurrence chart, failure procedures, and the exports.

use super::api::{list_filter, path_id, ListQuery};
use super::attachments::{self, Stored};
use super::failures::{self, CriticalInput, FailureInput, FailureQuery, ProcedureInput};
use super::response::{self, EntryInput, EvidenceInput, CONDITIONS, MEASURES};
use super::service::{self, ReportInput, StepAction, StepInput};
use super::{export, store, Kind, LOST_ITEMS, STATUSES};
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    HandleIncidents, ManageFailureProcedures, ReadIncidents, RecordFailures, ReportEmergencyAction,
    ReportIncident, UseOwnAccount, ViewFailureProcedures, ViewFailureRecords,
};
use crate::auth::{token, Actor, Require};
use crate::org::pages::{form_errors, NoticeQuery};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::i18n;
use crate::web::templates::{render, Chrome};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::Action;
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes(r: Routes) -> Routes {
    r.get("/incidents", list_page)
        .get("/incidents/new", new_page)
        .post("/incidents/new", new_submit)
        .post("/incidents/notifications/read", read_notifications)
        .post("/incidents/notification-address", address_submit)
        .get("/incidents/export.csv", export_incidents_csv)
        .get("/incidents/export.xlsx", export_incidents_xlsx)
        .get("/incidents/{id}", incident_page)
        .post("/incidents/{id}/steps/{step}", step_submit)
        .post("/incidents/{id}/promote", promote_submit)
        .post("/incidents/{id}/entries", entry_submit)
        .post("/incidents/{id}/emergency-actions", emergency_submit)
        .post("/incidents/{id}/evidence", evidence_submit)
        .post("/incidents/{id}/attachments", attach_submit)
        .post("/incidents/{id}/failure-record", failure_submit)
        .get("/failures", failures_page)
        .get("/failures/export.csv", export_failures_csv)
        .get("/failures/export.xlsx", export_failures_xlsx)
        .get("/failure-procedures", procedures_page)
        .post("/failure-procedures", procedure_submit)
        .post("/failure-procedures/critical", critical_submit)
        .get("/failure-procedures/{id}", procedure_page)
}

/// A form's fields (without its CSRF token) as an input the API takes too,
/// whose unknown fields are refused.
fn form_fields<T: serde::de::DeserializeOwned>(
    mut f: serde_json::Map<String, Value>,
) -> Result<T, AppError> {
    f.remove("csrf");
    serde_json::from_value(Value::Object(f))
        .map_err(|e| AppError::invalid("form", "error.form_fields", &[("detail", e.to_string())]))
}

fn options(prefix: &str, codes: &[&str]) -> Vec<Value> {
    codes
        .iter()
        .map(|c| json!({ "code": c, "label": i18n::t(i18n::current(), &format!("{prefix}.{c}"), &[]) }))
        .collect()
}

async fn systems(state: &AppState) -> Result<Vec<Value>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(crate::org::store::list_systems(&mut conn)
        .await?
        .into_iter()
        .map(|s| json!({ "code": s.code, "name": s.name }))
        .collect())
}

// ---------------------------------------------------------------------------
// Lists

async fn list_page(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Query(q): Query<ListQuery>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = n.notice(&[
        ("read", "incident.notice_read"),
        ("address", "mail.address_saved"),
    ]);
    render_list(&state, &req.actor, q, notice, None, StatusCode::OK).await
}

/// The lists page; `address` is a refused address form (typed value, errors).
async fn render_list(
    state: &AppState,
    actor: &Actor,
    q: ListQuery,
    notice: Option<&str>,
    address: Option<(String, Vec<FieldError>)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    let mine_f = list_filter(&mut conn, actor, &ListQuery::default()).await?;
    let mine = store::list(&mut conn, &mine_f, now, 200).await?;
    let wide = actor.scope(Action::ViewIncidents).is_some();
    let (mut all, mut counts, mut errors) = (vec![], vec![], vec![]);
    if wide {
        let q = ListQuery {
            scope: Some("all".into()),
            ..q.clone()
        };
        match list_filter(&mut conn, actor, &q).await {
            Ok(f) => {
                all = store::list(&mut conn, &f, now, 500).await?;
                counts = store::counts(&mut conn, &f).await?;
            }
            Err(AppError::Invalid(e)) => errors = e,
            Err(e) => return Err(e.into()),
        }
    }
    let kept_email = match actor.person_id {
        Some(p) => crate::mail::address_of(&mut conn, p.0)
            .await?
            .unwrap_or_default(),
        None => String::new(),
    };
    drop(conn);
    let (email, address_errors) = match address {
        Some((typed, e)) => (typed, e),
        None => (kept_email, vec![]),
    };
    let notices = service::my_notifications(state, actor).await?;
    let unread = notices.iter().filter(|n| !n.read).count();
    let mut by_kind: Vec<Value> = Vec::new();
    for k in Kind::ALL {
        let row: Vec<i64> = STATUSES
            .iter()
            .map(|s| {
                counts
                    .iter()
                    .filter(|c| c.0 == k.code() && c.1 == *s)
                    .map(|c| c.2)
                    .sum()
            })
            .collect();
        let total: i64 = row.iter().sum();
        by_kind.push(json!({ "kind": k.code(), "counts": row, "total": total }));
    }
    let html = render(
        "incidents.html",
        &Chrome::for_actor(actor),
        json!({
            "mine": mine, "all": all, "wide": wide, "by_kind": by_kind, "statuses": STATUSES,
            "notices": notices, "unread": unread,
            "may_report": actor.scope(Action::ReportIncident).is_some(),
            "filter": { "kind": q.kind, "status": q.status, "system_code": q.system_code, "security": q.security,
                        "from": q.from, "to": q.to },
            "kinds": options("incident.kind", &Kind::ALL.map(|k| k.code())),
            "status_options": options("incident.status", &STATUSES),
            "systems": systems(state).await?,
            "errors": form_errors(&errors, &["kind", "status", "from", "to"], "f-"),
            "export_query": export_query(&q),
            "notice": notice,
            "email": email,
            "address_errors": form_errors(&address_errors, &["email"], "addr-"),
            "mail_on": state.config().mail.enabled(),
        }),
    )?;
    Ok((status, html).into_response())
}

fn export_query(q: &ListQuery) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("kind", &q.kind),
        ("status", &q.status),
        ("system_code", &q.system_code),
        ("security", &q.security),
        ("from", &q.from),
        ("to", &q.to),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_deref().filter(|s| !s.is_empty()).map(|v| (*k, v)))
    .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn read_notifications(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    CsrfForm(_f): CsrfForm<Value>,
) -> Result<Response, PageError> {
    service::mark_read(&state, &req.actor).await?;
    Ok(Redirect::to("/incidents?done=read").into_response())
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct AddressForm {
    #[serde(default)]
    email: String,
}

async fn address_submit(
    State(state): State<AppState>,
    req: Require<UseOwnAccount>,
    CsrfForm(f): CsrfForm<AddressForm>,
) -> Result<Response, PageError> {
    match crate::mail::set_own_address(&state, &req.actor, &f.email).await {
        Ok(()) => Ok(Redirect::to("/incidents?done=address").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_list(
                &state,
                &req.actor,
                ListQuery::default(),
                None,
                Some((f.email.clone(), errors)),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn export_list(
    state: &AppState,
    actor: &Actor,
    mut q: ListQuery,
) -> Result<export::Table, AppError> {
    if actor.scope(Action::ViewIncidents).is_some() {
        q.scope = Some("all".into());
    } else {
        q.scope = Some("mine".into());
    }
    let mut conn = state.db().pool().acquire().await?;
    let f = list_filter(&mut conn, actor, &q).await?;
    let list = store::list(&mut conn, &f, state.clock().unix(), 10_000).await?;
    Ok(export::incidents_table(&list))
}

fn download(bytes: Vec<u8>, ct: &'static str, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ct.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn export_incidents_csv(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let t = export_list(&state, &req.actor, q).await?;
    Ok(download(
        export::to_csv(&t)?,
        "text/csv; charset=utf-8",
        "incidents.csv",
    ))
}

async fn export_incidents_xlsx(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    let t = export_list(&state, &req.actor, q).await?;
    Ok(download(export::to_xlsx(&t)?, XLSX, "incidents.xlsx"))
}

// ---------------------------------------------------------------------------
// The report form

const REPORT_FIELDS: &[&str] = &[
    "kind",
    "lost_item",
    "title",
    "description",
    "noticed_at",
    "system_code",
    "attachments",
    "form",
];

async fn new_page(
    State(state): State<AppState>,
    req: Require<ReportIncident>,
) -> Result<Response, PageError> {
    let draft = service::load_draft(&state, &req.actor).await?;
    let (form, kept): (ReportInput, Vec<Stored>) = match &draft {
        Some(d) => (
            serde_json::from_value(d["form"].clone()).unwrap_or_default(),
            serde_json::from_value(d["files"].clone()).unwrap_or_default(),
        ),
        None => (ReportInput::default(), vec![]),
    };
    render_new(
        &state,
        &req.actor,
        &form,
        &kept,
        &[],
        draft.is_some(),
        StatusCode::OK,
    )
    .await
}

async fn render_new(
    state: &AppState,
    actor: &Actor,
    form: &ReportInput,
    kept: &[Stored],
    errors: &[FieldError],
    from_draft: bool,
    status: StatusCode,
) -> Result<Response, PageError> {
    let max_kb = {
        let mut conn = state.db().pool().acquire().await?;
        attachments::max_bytes(&mut conn).await? / 1024
    };
    let html = render(
        "incident_new.html",
        &Chrome::for_actor(actor),
        json!({
            "form": form, "kept": kept, "from_draft": from_draft,
            "errors": form_errors(errors, REPORT_FIELDS, "r-"),
            "kinds": options("incident.kind", &Kind::ALL.map(|k| k.code())),
            "lost_items": options("incident.lost_item", &LOST_ITEMS),
            "systems": systems(state).await?,
            "max_kb": max_kb,
            "allowed": attachments::ALLOWED.iter().map(|a| a.0).collect::<Vec<_>>().join(", "),
            "max_files": attachments::MAX_FILES,
        }),
    )?;
    Ok((status, html).into_response())
}

/// Reads a multipart form whose first field must be the CSRF token: text
/// fields, and files under `file_field`.
pub(crate) async fn read_multipart(
    actor: &Actor,
    multipart: Result<Multipart, MultipartRejection>,
    file_field: &str,
) -> Result<
    (
        Vec<(String, String)>,
        Vec<(String, Vec<u8>)>,
        Vec<FieldError>,
    ),
    PageError,
> {
    let (fields, files, errors) =
        read_multipart_files(actor, multipart, file_field, |name| name == file_field).await?;
    let files = files.into_iter().map(|(_, n, b)| (n, b)).collect();
    Ok((fields, files, errors))
}

/// Files of a multipart form: (form field, file name, content).
pub(crate) type FormFiles = Vec<(String, String, Vec<u8>)>;

/// Reads a multipart form whose first field must be the CSRF token: text
/// fields, and files under every field `is_file` names (errors reading
/// them go to `error_field`).
pub(crate) async fn read_multipart_files(
    actor: &Actor,
    multipart: Result<Multipart, MultipartRejection>,
    error_field: &str,
    is_file: impl Fn(&str) -> bool,
) -> Result<(Vec<(String, String)>, FormFiles, Vec<FieldError>), PageError> {
    let file_field = error_field;
    let bad_form = || PageError(AppError::invalid("form", "error.form_encoding", &[]));
    let mut mp = multipart.map_err(|_| bad_form())?;
    let csrf_ok = match mp.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => match f.text().await {
            Ok(sent) => !actor.session.csrf.is_empty() && token::same(&sent, &actor.session.csrf),
            Err(_) => false,
        },
        _ => false,
    };
    if !csrf_ok {
        return Err(PageError(AppError::Csrf));
    }
    let mut fields = Vec::new();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                errors.push(FieldError::new(
                    file_field,
                    "incident.attachment_unreadable",
                    &[],
                ));
                break;
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if is_file(&name) {
            let file_name = field.file_name().unwrap_or("").to_string();
            match field.bytes().await {
                Ok(b) if file_name.is_empty() && b.is_empty() => {}
                Ok(b) => files.push((name, file_name, b.to_vec())),
                Err(_) => {
                    errors.push(FieldError::new(
                        file_field,
                        "incident.attachment_unreadable",
                        &[],
                    ));
                    break;
                }
            }
        } else {
            match field.text().await {
                Ok(t) => fields.push((name, t)),
                Err(_) => {
                    errors.push(FieldError::new("form", "error.form_encoding", &[]));
                    break;
                }
            }
        }
    }
    Ok((fields, files, errors))
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Stores the files of a form; returns what was stored and the errors.
async fn store_files(
    state: &AppState,
    files: Vec<(String, Vec<u8>)>,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<Stored>, AppError> {
    let mut out = Vec::new();
    if files.len() > attachments::MAX_FILES {
        errors.push(FieldError::new(
            "attachments",
            "incident.attachment_too_many",
            &[("max", attachments::MAX_FILES.to_string())],
        ));
        return Ok(out);
    }
    for (name, bytes) in files {
        match attachments::store_file(state, "attachments", &name, &bytes).await? {
            Ok(s) => out.push(s),
            Err(e) => errors.push(e),
        }
    }
    Ok(out)
}

async fn new_submit(
    State(state): State<AppState>,
    req: Require<ReportIncident>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let actor = &req.actor;
    let (fields, files, mut errors) = read_multipart(actor, multipart, "attachments").await?;
    let form = ReportInput {
        kind: field(&fields, "kind").into(),
        lost_item: field(&fields, "lost_item").into(),
        title: field(&fields, "title").into(),
        description: field(&fields, "description").into(),
        noticed_at: field(&fields, "noticed_at").into(),
        system_code: field(&fields, "system_code").into(),
    };
    // Files kept from an earlier try (by hash, from this person's draft).
    let draft = service::load_draft(&state, actor).await?;
    let drafted: Vec<Stored> = draft
        .as_ref()
        .and_then(|d| serde_json::from_value(d["files"].clone()).ok())
        .unwrap_or_default();
    let keep: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "kept")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut stored: Vec<Stored> = drafted
        .into_iter()
        .filter(|f| keep.contains(&f.sha256.as_str()))
        .collect();
    stored.extend(store_files(&state, files, &mut errors).await?);
    if stored.len() > attachments::MAX_FILES {
        errors.push(FieldError::new(
            "attachments",
            "incident.attachment_too_many",
            &[("max", attachments::MAX_FILES.to_string())],
        ));
    }
    let outcome = if errors.is_empty() {
        service::report(&state, actor, &form, &stored).await
    } else {
        // Check the other fields too, so every problem shows at once.
        let mut conn = state.db().pool().acquire().await?;
        match service::validate_report(&mut conn, &form, state.clock().unix()).await {
            Err(AppError::Invalid(more)) => errors.extend(more),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        Err(AppError::Invalid(std::mem::take(&mut errors)))
    };
    match outcome {
        Ok(id) => Ok(Redirect::to(&format!("/incidents/{id}?done=reported")).into_response()),
        Err(AppError::Invalid(errors)) => {
            // Nothing typed is lost: the form comes back with it, and it is
            // kept as a draft for the next visit too.
            service::save_draft(&state, actor, &json!({ "form": form, "files": stored })).await?;
            render_new(
                &state,
                actor,
                &form,
                &stored,
                &errors,
                false,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// An incident's page

/// A form on the incident page that did not go through: which one, what
/// was typed, and what is wrong.
struct Failed<'a> {
    form: &'a str,
    typed: Value,
    errors: Vec<FieldError>,
}

async fn incident_page(
    State(state): State<AppState>,
    req: Require<ReadIncidents>,
    Path(id): Path<String>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let notice = n.notice(&[
        ("reported", "incident.done.reported"),
        ("step", "incident.done.step"),
        ("promoted", "incident.done.promoted"),
        ("entry", "incident.done.entry"),
        ("evidence", "incident.done.evidence"),
        ("attached", "incident.done.attached"),
        ("failure", "incident.done.failure"),
    ]);
    render_incident(&state, &req.actor, id, None, notice, StatusCode::OK).await
}

async fn render_incident(
    state: &AppState,
    actor: &Actor,
    id: i64,
    failed: Option<Failed<'_>>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let v = service::view(state, actor, id).await?;
    let (handler, my_steps) = {
        let mut conn = state.db().pool().acquire().await?;
        let handler = service::can_handle(&mut conn, actor, &v.summary).await?
            && actor.scope(Action::HandleIncidents).is_some();
        let mine: Vec<i64> = v
            .steps
            .iter()
            .filter(|s| s.person_id.is_some() && s.person_id == actor.person_id)
            .map(|s| s.id)
            .collect();
        (handler, mine)
    };
    let steps: Vec<Value> = v
        .steps
        .iter()
        .map(|s| {
            let mine = my_steps.contains(&s.id);
            let mut actions = Vec::new();
            if mine && s.completed_at.is_none() {
                if s.acknowledged_at.is_none() || s.seq == 3 {
                    actions.push("acknowledge");
                }
                match s.seq {
                    1 => actions.push("forward"),
                    2 => actions.push("report"),
                    _ => {}
                }
            }
            if mine && s.seq == 2 {
                actions.push("instruct");
            }
            json!({ "step": s, "mine": mine, "actions": actions })
        })
        .collect();
    let (form, typed, errors) = match &failed {
        Some(f) => (f.form, f.typed.clone(), f.errors.clone()),
        None => ("", json!({}), vec![]),
    };
    let entry_fields = [
        "kind",
        "content",
        "suspected_cause",
        "damage_scope",
        "measure",
        "condition",
        "employee_number",
        "at",
        "temporary_measure",
        "root_cause",
        "plan",
        "parties",
        "note",
        "reason",
        "comment",
        "action",
        "step",
        "ledger_indexes",
        "system_code",
        "cause_category",
        "started_at",
        "resolved_at",
        "impact",
        "handling",
        "attachments",
        "freeze_reason",
        "query",
    ];
    let ledger_size = state.ledger().size().await.unwrap_or(0);
    let max_kb = {
        let mut conn = state.db().pool().acquire().await?;
        attachments::max_bytes(&mut conn).await? / 1024
    };
    let html = render(
        "incident.html",
        &Chrome::for_actor(actor),
        json!({
            "i": v, "steps": steps, "handler": handler, "notice": notice,
            "is_reporter": actor.person_id == Some(v.summary.reporter_id),
            "may_freeze": actor.scope(Action::FreezeEvidence).is_some(),
            "may_emergency": actor.scope(Action::ReportEmergencyAction).is_some(),
            "may_record_failure": actor.scope(Action::RecordFailures).is_some(),
            "is_director": actor.holds(mamori_policy::Role::SecurityDirector) || actor.holds(mamori_policy::Role::SecurityChiefManager),
            "is_cio": actor.holds(mamori_policy::Role::Cio),
            "failed_form": form, "typed": typed,
            "errors": form_errors(&errors, &entry_fields, &format!("{form}-")),
            "measures": options("incident.measure", &MEASURES),
            "conditions": options("incident.condition", &CONDITIONS),
            "causes": options("failure.cause", &failures::CAUSES),
            "impacts": options("failure.impact", &failures::IMPACTS),
            "systems": systems(state).await?,
            "ledger_size": ledger_size,
            "max_kb": max_kb,
            "allowed": attachments::ALLOWED.iter().map(|a| a.0).collect::<Vec<_>>().join(", "),
        }),
    )?;
    Ok((status, html).into_response())
}

/// Runs a page action: on success go back to the incident with a notice;
/// on bad input re-render it with the form's values and errors.
async fn after(
    state: &AppState,
    actor: &Actor,
    id: i64,
    form: &str,
    typed: Value,
    outcome: Result<(), AppError>,
    done: &str,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/incidents/{id}?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_incident(
                state,
                actor,
                id,
                Some(Failed {
                    form,
                    typed,
                    errors,
                }),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::Conflict(code)) => {
            let errors = vec![FieldError::new("form", code, &[])];
            render_incident(
                state,
                actor,
                id,
                Some(Failed {
                    form,
                    typed,
                    errors,
                }),
                None,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct StepForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    comment: String,
}

async fn step_submit(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path((id, step)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<StepForm>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let step = path_id(&step, "incident step")?;
    let outcome = match StepAction::parse(f.action.trim()) {
        Some(action) => {
            service::act_on_step(
                &state,
                &req.actor,
                id,
                step,
                &StepInput {
                    action,
                    comment: f.comment.clone(),
                },
            )
            .await
        }
        None => Err(AppError::invalid(
            "action",
            "incident.action_not_for_step",
            &[],
        )),
    };
    // A step that is not the actor's has no form on their page: its error
    // shows at the top.
    let form = match &outcome {
        Err(AppError::Invalid(e)) if e.iter().any(|e| e.field == "step") => "form".to_string(),
        _ => format!("step{step}"),
    };
    after(&state, &req.actor, id, &form, json!(f), outcome, "step").await
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct ReasonForm {
    #[serde(default)]
    reason: String,
}

async fn promote_submit(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<ReasonForm>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let outcome = service::promote(&state, &req.actor, id, &f.reason).await;
    after(
        &state,
        &req.actor,
        id,
        "promote",
        json!(f),
        outcome,
        "promoted",
    )
    .await
}

/// The entry forms: every field as text (a checkbox sends `1`).
#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct EntryForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    suspected_cause: String,
    #[serde(default)]
    damage_scope: String,
    #[serde(default)]
    measure: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    employee_number: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    temporary_measure: String,
    #[serde(default)]
    root_cause: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    parties: String,
    #[serde(default)]
    not_needed: String,
    #[serde(default)]
    note: String,
}

impl EntryForm {
    fn to_input(&self) -> EntryInput {
        EntryInput {
            kind: self.kind.clone(),
            content: self.content.clone(),
            suspected_cause: self.suspected_cause.clone(),
            damage_scope: self.damage_scope.clone(),
            measure: self.measure.clone(),
            condition: self.condition.clone(),
            employee_number: self.employee_number.clone(),
            at: self.at.clone(),
            temporary_measure: self.temporary_measure.clone(),
            root_cause: self.root_cause.clone(),
            plan: self.plan.clone(),
            parties: self.parties.clone(),
            not_needed: matches!(self.not_needed.as_str(), "1" | "on" | "true"),
            note: self.note.clone(),
        }
    }
}

async fn entry_submit(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<EntryForm>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let outcome = response::add_entry(&state, &req.actor, id, &f.to_input()).await;
    let form = format!(
        "entry-{}",
        f.kind
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>()
    );
    after(&state, &req.actor, id, &form, json!(f), outcome, "entry").await
}

async fn emergency_submit(
    State(state): State<AppState>,
    req: Require<ReportEmergencyAction>,
    Path(id): Path<String>,
    CsrfForm(mut f): CsrfForm<EntryForm>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    f.kind = "emergency_action".into();
    let outcome = response::add_entry(&state, &req.actor, id, &f.to_input()).await;
    after(
        &state,
        &req.actor,
        id,
        "entry-emergency_action",
        json!(f),
        outcome,
        "entry",
    )
    .await
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct EvidenceForm {
    /// Ledger indexes, separated by commas or spaces.
    #[serde(default)]
    ledger_indexes: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    freeze_reason: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

async fn evidence_submit(
    State(state): State<AppState>,
    req: Require<HandleIncidents>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<EvidenceForm>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let mut indexes = Vec::new();
    let mut bad = Vec::new();
    for part in f
        .ledger_indexes
        .split([',', ' ', '、', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match part.parse::<u64>() {
            Ok(n) => indexes.push(n),
            Err(_) => bad.push(part.chars().take(20).collect::<String>()),
        }
    }
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let wants_freeze = !f.freeze_reason.trim().is_empty()
        || [&f.system, &f.actor, &f.from, &f.to]
            .iter()
            .any(|s| !s.trim().is_empty());
    let outcome = if !bad.is_empty() {
        Err(AppError::invalid(
            "ledger_indexes",
            "incident.bad_indexes",
            &[("value", bad.join(", "))],
        ))
    } else {
        let input = EvidenceInput {
            ledger_indexes: indexes,
            note: f.note.clone(),
            freeze: wants_freeze.then(|| crate::ledger::bundle::FreezeRequest {
                reason: f.freeze_reason.clone(),
                query: crate::ledger::bundle::EvidenceQuery {
                    system: opt(&f.system),
                    actor: opt(&f.actor),
                    from: opt(&f.from),
                    to: opt(&f.to),
                    ..Default::default()
                },
            }),
        };
        response::preserve_evidence(&state, &req.actor, id, &input)
            .await
            .map(|_| ())
    };
    // The freeze's own field names (`reason`, `query.*`) are shown as the form's.
    let outcome = outcome.map_err(|e| match e {
        AppError::Invalid(errs) => AppError::Invalid(
            errs.into_iter()
                .map(|mut e| {
                    if e.field == "reason" || e.field == "freeze.reason" {
                        e.field = "freeze_reason".into();
                    } else if e.field.starts_with("query") {
                        e.field = "query".into();
                    }
                    e
                })
                .collect(),
        ),
        e => e,
    });
    after(
        &state,
        &req.actor,
        id,
        "evidence",
        json!(f),
        outcome,
        "evidence",
    )
    .await
}

async fn attach_submit(
    State(state): State<AppState>,
    req: Require<ReportIncident>,
    Path(id): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let (_, files, mut errors) = read_multipart(&req.actor, multipart, "attachments").await?;
    if files.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "attachments",
            "incident.attachment_none",
            &[],
        ));
    }
    let stored = store_files(&state, files, &mut errors).await?;
    let outcome = if errors.is_empty() {
        attachments::attach(&state, &req.actor, id, &stored).await
    } else {
        Err(AppError::Invalid(errors))
    };
    after(
        &state,
        &req.actor,
        id,
        "attach",
        json!({}),
        outcome,
        "attached",
    )
    .await
}

async fn failure_submit(
    State(state): State<AppState>,
    req: Require<RecordFailures>,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "incident")?;
    let f: FailureInput = form_fields(f)?;
    let outcome = failures::record(&state, &req.actor, &req.scope, id, &f)
        .await
        .map(|_| ());
    after(
        &state,
        &req.actor,
        id,
        "failure",
        json!(f),
        outcome,
        "failure",
    )
    .await
}

// ---------------------------------------------------------------------------
// Failure records and recurrence

async fn failures_page(
    State(state): State<AppState>,
    req: Require<ViewFailureRecords>,
    Query(q): Query<FailureQuery>,
) -> Result<Response, PageError> {
    let (records, errors) = match failures::search(&state, &req.actor, &req.scope, &q).await {
        Ok(r) => (r, vec![]),
        Err(AppError::Invalid(e)) => (vec![], e),
        Err(e) => return Err(e.into()),
    };
    let report = failures::analyse(&records);
    let chart = month_chart(&report.by_month);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let query = serde_urlencoded::to_string(&q).unwrap_or_default();
    let html = render(
        "failures.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "records": records, "report": report, "chart": chart, "q": q, "query": query,
            "errors": form_errors(&errors, &["cause_category", "impact", "min_minutes", "from", "to"], "fq-"),
            "causes": options("failure.cause", &failures::CAUSES),
            "impacts": options("failure.impact", &failures::IMPACTS),
            "systems": systems(&state).await?,
        }),
    )?;
    Ok((status, html).into_response())
}

/// A bar chart of failures per month (viewBox 760 × 220), drawn by the server.
fn month_chart(months: &[failures::MonthCount]) -> Value {
    const W: f64 = 760.0;
    const H: f64 = 220.0;
    const LEFT: f64 = 40.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 28.0;
    let n = months.len().max(1);
    let max = months.iter().map(|m| m.count).max().unwrap_or(0).max(1);
    let top = if max % 2 == 0 { max } else { max + 1 };
    let plot_w = W - LEFT - 8.0;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar_w = (slot * 0.7).max(1.0);
    let fmt = |v: f64| format!("{v:.1}");
    let every = n.div_ceil(12).max(1);
    let bars: Vec<Value> = months
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let h = plot_h * m.count as f64 / top as f64;
            json!({
                "x": fmt(LEFT + slot * i as f64 + (slot - bar_w) / 2.0), "y": fmt(TOP + plot_h - h),
                "w": fmt(bar_w), "h": fmt(h), "month": m.month, "count": m.count,
                "label": (i % every == 0).then(|| m.month.get(2..).unwrap_or("").replace('-', "/")),
                "lx": fmt(LEFT + slot * i as f64 + slot / 2.0),
            })
        })
        .collect();
    let grid: Vec<Value> = [0, top / 2, top]
        .iter()
        .map(|v| json!({ "y": fmt(TOP + plot_h - plot_h * *v as f64 / top as f64), "label": v }))
        .collect();
    json!({ "w": W, "h": H, "left": LEFT, "right": fmt(W - 8.0), "label_y": fmt(H - 8.0), "bars": bars, "grid": grid })
}

async fn export_failures(
    state: &AppState,
    actor: &Actor,
    scope: &crate::auth::ActorScope,
    q: &FailureQuery,
) -> Result<export::Table, AppError> {
    Ok(export::failures_table(
        &failures::search(state, actor, scope, q).await?,
    ))
}

async fn export_failures_csv(
    State(state): State<AppState>,
    req: Require<ViewFailureRecords>,
    Query(q): Query<FailureQuery>,
) -> Result<Response, PageError> {
    let t = export_failures(&state, &req.actor, &req.scope, &q).await?;
    Ok(download(
        export::to_csv(&t)?,
        "text/csv; charset=utf-8",
        "failure-records.csv",
    ))
}

async fn export_failures_xlsx(
    State(state): State<AppState>,
    req: Require<ViewFailureRecords>,
    Query(q): Query<FailureQuery>,
) -> Result<Response, PageError> {
    let t = export_failures(&state, &req.actor, &req.scope, &q).await?;
    Ok(download(export::to_xlsx(&t)?, XLSX, "failure-records.xlsx"))
}

// ---------------------------------------------------------------------------
// Failure procedures (K26)

async fn procedures_page(
    State(state): State<AppState>,
    req: Require<ViewFailureProcedures>,
    Query(n): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = n.notice(&[
        ("written", "failure.done.written"),
        ("critical", "failure.done.critical"),
    ]);
    render_procedures(&state, &req.actor, None, notice, StatusCode::OK).await
}

async fn render_procedures(
    state: &AppState,
    actor: &Actor,
    failed: Option<Failed<'_>>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let overview = failures::overview(state).await?;
    let (form, typed, errors) = match &failed {
        Some(f) => (f.form, f.typed.clone(), f.errors.clone()),
        None => ("", json!({}), vec![]),
    };
    let html = render(
        "failure_procedures.html",
        &Chrome::for_actor(actor),
        json!({
            "systems": overview, "notice": notice,
            "may_manage": actor.scope(Action::ManageFailureProcedures).is_some(),
            "failed_form": form, "typed": typed,
            "errors": form_errors(&errors, &["system_code", "title", "steps", "fallback", "reason"], &format!("{form}-")),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn procedure_outcome(
    state: &AppState,
    actor: &Actor,
    form: &str,
    typed: Value,
    outcome: Result<(), AppError>,
    done: &str,
) -> Result<Response, PageError> {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/failure-procedures?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_procedures(
                state,
                actor,
                Some(Failed {
                    form,
                    typed,
                    errors,
                }),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::Conflict(code)) => {
            let errors = vec![FieldError::new("form", code, &[])];
            render_procedures(
                state,
                actor,
                Some(Failed {
                    form,
                    typed,
                    errors,
                }),
                None,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(AppError::Forbidden("out_of_scope")) => {
            let errors = vec![FieldError::new("system_code", "failure.out_of_scope", &[])];
            render_procedures(
                state,
                actor,
                Some(Failed {
                    form,
                    typed,
                    errors,
                }),
                None,
                StatusCode::FORBIDDEN,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

async fn procedure_submit(
    State(state): State<AppState>,
    req: Require<ManageFailureProcedures>,
    CsrfForm(f): CsrfForm<serde_json::Map<String, Value>>,
) -> Result<Response, PageError> {
    let f: ProcedureInput = form_fields(f)?;
    let outcome = failures::write_procedure(&state, &req.actor, &f)
        .await
        .map(|_| ());
    procedure_outcome(&state, &req.actor, "proc", json!(f), outcome, "written").await
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
struct CriticalForm {
    #[serde(default)]
    system_code: String,
    #[serde(default)]
    critical: String,
    #[serde(default)]
    reason: String,
}

async fn critical_submit(
    State(state): State<AppState>,
    req: Require<ManageFailureProcedures>,
    CsrfForm(f): CsrfForm<CriticalForm>,
) -> Result<Response, PageError> {
    let input = CriticalInput {
        system_code: f.system_code.clone(),
        critical: matches!(f.critical.as_str(), "1" | "on" | "true"),
        reason: f.reason.clone(),
    };
    let outcome = failures::set_critical(&state, &req.actor, &input).await;
    procedure_outcome(&state, &req.actor, "crit", json!(f), outcome, "critical").await
}

async fn procedure_page(
    State(state): State<AppState>,
    req: Require<ViewFailureProcedures>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = path_id(&id, "failure procedure")?;
    let p = failures::procedure(&state, id).await?;
    let html = render(
        "failure_procedure.html",
        &Chrome::for_actor(&req.actor),
        json!({ "p": p }),
    )?;
    Ok(html.into_response())
}
