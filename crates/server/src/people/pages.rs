//! Pages for people and accounts (K17.2, K17.3, K11.1.5, K17.4): the people
//! list and one person, personnel events by hand and by CSV, account
//! administration (lock, one-time password, shared accounts, forced
//! password changes) and the ward's settings. The birth date never appears.

use super::api::{scope_units, submit_one, EventInput};
use super::service::{import_csv, ImportOptions, ImportReport, Source};
use super::{store, Person};
use crate::app::{AppState, Routes};
use crate::auth::perm::{
    ImportPersonnel, ManageAccounts, ManageSettings, ManageSharedAccounts, RecordPersonnelEvent,
    ViewPeople,
};
use crate::auth::{token, Actor, ActorScope, Require};
use crate::db::Conn;
use crate::identity::service::{
    administer, create_shared as create_shared_account, force_change_many, AccountAction,
    SharedAccountInput,
};
use crate::ids::{OrgUnitId, PersonId};
use crate::org::pages::{
    form_errors, non_empty, parse_id, period_state, today, unit_options, NoticeQuery,
};
use crate::org::service::in_scope;
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_personnel_csv::{Column, EmploymentType, EventKind};
use mamori_policy::permission::Action;
use mamori_policy::Role;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

pub fn routes(r: Routes) -> Routes {
    r.get("/people", people_page)
        .get("/people/new-event", event_page)
        .post("/people/new-event", event_submit)
        .get("/people/import", import_page)
        .post("/people/import", import_submit)
        .get("/people/{id}", person_page)
        .post("/people/{id}/account", account_action)
        .post("/people/{id}/reset-password", reset_password)
        .get("/accounts", accounts_page)
        .post("/accounts/shared", create_shared)
        .post("/accounts/force-change", force_change)
        .get("/settings", settings_page)
        .post("/settings", settings_submit)
}

/// Most rows a list page shows; the search narrows further.
const LIST_LIMIT: i64 = 500;

// ---------------------------------------------------------------------------
// The people list

#[derive(Debug, Default, Deserialize)]
struct PeopleQuery {
    #[serde(default)]
    q: String,
}

async fn people_page(
    State(state): State<AppState>,
    req: Require<ViewPeople>,
    Query(q): Query<PeopleQuery>,
) -> Result<Response, PageError> {
    let query = q.q.trim();
    let mut errors = Vec::new();
    let mut conn = state.db().pool().acquire().await?;
    let people = if query.chars().count() > 100 {
        errors.push(FieldError::new(
            "q",
            "field.too_long",
            &[("max", "100".into())],
        ));
        vec![]
    } else {
        let units = scope_units(&mut conn, &req.scope).await?;
        store::list_people(
            &mut conn,
            units.as_deref(),
            query,
            state.clock().unix(),
            LIST_LIMIT,
        )
        .await?
    };
    let more = people.len() as i64 >= LIST_LIMIT;
    let html = render(
        "people.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "q": q.q,
            "people": people.iter().map(person_row).collect::<Vec<_>>(),
            "more": more,
            "errors": form_errors(&errors, &["q"], ""),
            "can_record": req.actor.scope(Action::RecordPersonnelEvent).is_some(),
            "can_import": req.actor.scope(Action::ImportPersonnel).is_some(),
            "can_view_org": req.actor.scope(Action::ViewOrg).is_some(),
        }),
    )?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, html).into_response())
}

/// A person as lists show them: never the birth date.
fn person_row(p: &Person) -> Value {
    json!({
        "id": p.id,
        "employee_number": p.employee_number,
        "name_kanji": p.name_kanji,
        "name_kana": p.name_kana,
        "name_romaji": p.name_romaji,
        "org_unit_id": p.org_unit_id,
        "org_unit_name": p.org_unit_name,
        "title": p.title,
        "employment": p.employment,
        "status": p.status,
        "hired_on": p.hired_on,
        "left_on": p.left_on,
        "account": p.account.as_ref().map(|a| json!({
            "id": a.id,
            "login": a.login,
            "disabled": a.disabled,
            "locked": a.locked,
            "must_change": a.must_change,
            "has_password": a.has_password,
            "password_changed_at": a.password_changed_at,
            "last_login_at": a.last_login_at,
        })),
    })
}

// ---------------------------------------------------------------------------
// One person

async fn person_page(
    State(state): State<AppState>,
    req: Require<ViewPeople>,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let pid = parse_id(&id)
        .map(PersonId)
        .ok_or(AppError::NotFound("person"))?;
    let notice = q.notice(&[
        ("lock", "pages.notice.locked"),
        ("unlock", "pages.notice.unlocked"),
        ("force_password_change", "pages.notice.forced"),
        ("end_sessions", "pages.notice.sessions_ended"),
        ("applied", "pages.notice.event_applied"),
        ("scheduled", "pages.notice.event_scheduled"),
    ]);
    let today = today(&state);
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    let person = store::get_person(&mut conn, pid)
        .await?
        .ok_or(AppError::NotFound("person"))?;
    crate::org::service::require_in_scope(&mut conn, &req.scope, person.org_unit_id).await?;
    // get_person judges a timed lock against time 0, so a lock that has run
    // out still reads as locked; the list query judges it against now.
    let person = store::list_people(&mut conn, None, &person.employee_number, now, 50)
        .await?
        .into_iter()
        .find(|p| p.id == pid)
        .unwrap_or(person);
    let units = crate::org::store::list_units(&mut conn).await?;
    let unit_names: HashMap<OrgUnitId, &str> =
        units.iter().map(|u| (u.id, u.name.as_str())).collect();
    let systems = crate::org::store::list_systems(&mut conn).await?;
    let mut roles = Vec::new();
    let mut past_roles = Vec::new();
    for a in crate::org::store::list_assignments(&mut conn, Some(pid), None, None).await? {
        let state_ = period_state(&a.valid_from, a.valid_to.as_deref(), &today);
        let v = json!({
            "role": a.role,
            "clause": a.role.parse::<Role>().ok().map(|r| r.clause()),
            "unit_id": a.org_unit_id,
            "unit_name": a.org_unit_id.and_then(|u| unit_names.get(&u).copied()),
            "system_name": a.system_id.and_then(|s| systems.iter().find(|x| x.id == s)).map(|s| s.name.clone()),
            "valid_from": a.valid_from,
            "valid_to": a.valid_to,
            "state": state_,
        });
        if state_ == "ended" {
            past_roles.push(v);
        } else {
            roles.push(v);
        }
    }
    let chain: Vec<Value> = crate::org::service::reporting_chain(&mut conn, person.org_unit_id, &today)
        .await?
        .into_iter()
        .map(|s| json!({ "role": s.role, "person_name": s.person_name, "unit_name": s.org_unit_id.and_then(|u| unit_names.get(&u).copied()) }))
        .collect();
    let events: Vec<Value> = store::list_events(&mut conn, Some(&person.employee_number), 100)
        .await?
        .into_iter()
        .map(|e| {
            let unit_code = e.detail.get("org_unit_code").and_then(Value::as_str).map(String::from);
            json!({
                "id": e.id,
                "kind": e.kind,
                "effective_date": e.effective_date,
                "status": e.status,
                "source": e.source,
                "error": e.error,
                "created_at": e.created_at,
                "applied_at": e.applied_at,
                "org_unit_code": unit_code,
                "unit_name": unit_code.as_deref().and_then(|c| units.iter().find(|u| u.code == c)).map(|u| u.name.clone()),
                "title": e.detail.get("title").and_then(Value::as_str),
                "note": e.detail.get("note").and_then(Value::as_str),
            })
        })
        .collect();
    let can_manage = match req.actor.scope(Action::ManageAccounts) {
        Some(ActorScope::Ward) => true,
        Some(s) => match person.org_unit_id {
            Some(u) => in_scope(&mut conn, &s, u).await?,
            None => false,
        },
        None => false,
    };
    let html = render(
        "person.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "person": person_row(&person),
            "roles": roles,
            "past_roles": past_roles,
            "chain": chain,
            "events": events,
            "notice": notice,
            "can_manage": can_manage,
            "can_view_org": req.actor.scope(Action::ViewOrg).is_some(),
            "is_me": req.actor.person_id == Some(pid),
        }),
    )?;
    Ok(html.into_response())
}

#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    #[serde(default)]
    action: String,
}

/// Lock, unlock, force a password change, or end every session (K17.3, K11.1.5, K12.1.5).
async fn account_action(
    State(state): State<AppState>,
    req: Require<ManageAccounts>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> Result<Response, PageError> {
    let pid = parse_id(&id)
        .map(PersonId)
        .ok_or(AppError::NotFound("person"))?;
    let action = match form.action.as_str() {
        "lock" => AccountAction::Lock,
        "unlock" => AccountAction::Unlock,
        "force_password_change" => AccountAction::ForcePasswordChange,
        "end_sessions" => AccountAction::EndSessions,
        _ => return Err(AppError::invalid("action", "pages.form.bad_choice", &[]).into()),
    };
    let account = account_of(&state, pid).await?;
    administer(&state, &req.actor, &req.scope, account, action).await?;
    Ok(Redirect::to(&format!("/people/{pid}?done={}", form.action)).into_response())
}

async fn account_of(state: &AppState, pid: PersonId) -> Result<crate::ids::AccountId, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let person = store::get_person(&mut conn, pid)
        .await?
        .ok_or(AppError::NotFound("person"))?;
    person
        .account
        .map(|a| a.id)
        .ok_or(AppError::NotFound("account"))
}

#[derive(Debug, Default, Deserialize)]
struct Empty {}

/// Issues a one-time password and shows it once (never stored in clear,
/// never sent anywhere).
async fn reset_password(
    State(state): State<AppState>,
    req: Require<ManageAccounts>,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let pid = parse_id(&id)
        .map(PersonId)
        .ok_or(AppError::NotFound("person"))?;
    let (person, account) = {
        let mut conn = state.db().pool().acquire().await?;
        let person = store::get_person(&mut conn, pid)
            .await?
            .ok_or(AppError::NotFound("person"))?;
        let account = person
            .account
            .clone()
            .ok_or(AppError::NotFound("account"))?;
        (person, account)
    };
    let otp =
        crate::identity::api::reset_in_scope(&state, &req.actor, &req.scope, account.id).await?;
    let html = render(
        "otp.html",
        &Chrome::for_actor(&req.actor),
        json!({
            "person": { "id": person.id, "name": person.name_kanji, "employee_number": person.employee_number },
            "login": account.login,
            "otp": otp,
        }),
    )?;
    Ok(html.into_response())
}

// ---------------------------------------------------------------------------
// Personnel events by hand

/// The event form as typed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct EventForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    employee_number: String,
    #[serde(default)]
    effective_date: String,
    #[serde(default)]
    name_kanji: String,
    #[serde(default)]
    name_kana: String,
    #[serde(default)]
    name_romaji: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    employment: String,
    #[serde(default)]
    org_unit_code: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    note: String,
}

impl EventForm {
    const FIELDS: &'static [&'static str] = &[
        "kind",
        "employee_number",
        "effective_date",
        "name_kanji",
        "name_kana",
        "name_romaji",
        "birth_date",
        "employment",
        "org_unit_code",
        "title",
        "note",
    ];

    /// The API's input. Fields another kind of event does not use are left
    /// out, so something typed before the kind was changed cannot block it.
    fn to_input(&self) -> EventInput {
        let kind = self.kind.parse::<EventKind>().ok();
        let hire = kind == Some(EventKind::Hire);
        let moves = kind != Some(EventKind::Retire);
        let only = |keep: bool, s: &str| if keep { non_empty(s) } else { None };
        EventInput {
            employee_number: self.employee_number.trim().to_string(),
            kind: self.kind.trim().to_string(),
            effective_date: self.effective_date.trim().to_string(),
            name_kanji: only(hire, &self.name_kanji),
            name_kana: only(hire, &self.name_kana),
            name_romaji: only(hire, &self.name_romaji),
            birth_date: only(hire, &self.birth_date),
            employment: only(hire, &self.employment),
            org_unit_code: only(moves, &self.org_unit_code),
            title: non_empty(&self.title),
            note: non_empty(&self.note),
        }
    }

    /// An empty required field reads better as "required" than as a
    /// malformed value.
    fn blank_is_required(&self, errors: Vec<FieldError>) -> Vec<FieldError> {
        errors
            .into_iter()
            .map(|e| {
                let blank = match e.field.as_str() {
                    "employee_number" => self.employee_number.trim().is_empty(),
                    "kind" => self.kind.trim().is_empty(),
                    "effective_date" => self.effective_date.trim().is_empty(),
                    _ => false,
                };
                if blank {
                    FieldError::new(e.field, "field.required", &[])
                } else {
                    e
                }
            })
            .collect()
    }
}

async fn event_page(
    State(state): State<AppState>,
    req: Require<RecordPersonnelEvent>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[
        ("applied", "pages.notice.event_applied"),
        ("scheduled", "pages.notice.event_scheduled"),
    ]);
    let form = EventForm {
        kind: "hire".into(),
        employment: "regular".into(),
        ..Default::default()
    };
    render_event(
        &state,
        &req.actor,
        &req.scope,
        &form,
        &[],
        notice,
        StatusCode::OK,
    )
    .await
}

async fn render_event(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    form: &EventForm,
    errors: &[FieldError],
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let today = today(state);
    let mut conn = state.db().pool().acquire().await?;
    let units = crate::org::store::list_units(&mut conn).await?;
    let reach: Option<HashSet<OrgUnitId>> = scope_units(&mut conn, scope)
        .await?
        .map(|v| v.into_iter().collect());
    let options = unit_options(&units, &today, |u| {
        reach.as_ref().is_none_or(|r| r.contains(&u.id))
            && period_state(&u.valid_from, u.valid_to.as_deref(), &today) != "ended"
    });
    let html = render(
        "personnel_event.html",
        &Chrome::for_actor(actor),
        json!({
            "form": form,
            "errors": form_errors(errors, EventForm::FIELDS, "ev-"),
            "notice": notice,
            "kinds": EventKind::ALL.iter().map(|k| k.code()).collect::<Vec<_>>(),
            "employments": EmploymentType::ALL.iter().map(|k| k.code()).collect::<Vec<_>>(),
            "units": options,
            "today": today,
        }),
    )?;
    Ok((status, html).into_response())
}

async fn event_submit(
    State(state): State<AppState>,
    req: Require<RecordPersonnelEvent>,
    CsrfForm(form): CsrfForm<EventForm>,
) -> Result<Response, PageError> {
    let errors =
        match submit_one(&state, &req.actor, &req.scope, Source::Ui, &form.to_input()).await {
            Ok(out) => {
                let done = if out.status == "applied" {
                    "applied"
                } else {
                    "scheduled"
                };
                // Go to the person when the actor may still see them (a
                // transfer out of the actor's units takes them out of sight).
                let visible = {
                    let mut conn = state.db().pool().acquire().await?;
                    let person = store::get_person(&mut conn, out.person_id).await?;
                    match (
                        req.actor.scope(Action::ViewPeople),
                        person.and_then(|p| p.org_unit_id),
                    ) {
                        (Some(ActorScope::Ward), _) => true,
                        (Some(s), Some(u)) => in_scope(&mut conn, &s, u).await?,
                        _ => false,
                    }
                };
                let to = if visible {
                    format!("/people/{}?done={done}", out.person_id)
                } else {
                    format!("/people/new-event?done={done}")
                };
                return Ok(Redirect::to(&to).into_response());
            }
            Err(AppError::Invalid(errors)) => form.blank_is_required(errors),
            Err(AppError::Forbidden("out_of_scope")) => {
                vec![FieldError::new("form", "people.out_of_scope", &[])]
            }
            Err(e) => return Err(e.into()),
        };
    render_event(
        &state,
        &req.actor,
        &req.scope,
        &form,
        &errors,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

// ---------------------------------------------------------------------------
// CSV import

async fn import_page(req: Require<ImportPersonnel>) -> Result<Response, PageError> {
    render_import(&req.actor, None, &[], false, StatusCode::OK)
}

fn render_import(
    actor: &Actor,
    report: Option<&ImportReport>,
    errors: &[FieldError],
    apply_valid: bool,
    status: StatusCode,
) -> Result<Response, PageError> {
    let columns: Vec<Value> = Column::ALL
        .iter()
        .map(|c| {
            let kinds: Vec<&str> = EventKind::ALL
                .iter()
                .filter(|k| c.required_for(**k))
                .map(|k| k.code())
                .collect();
            json!({
                "name": c.ja(),
                "code": c.code(),
                "always": Column::REQUIRED.contains(c),
                "required_for": kinds,
                "max": c.max_chars(),
            })
        })
        .collect();
    let html = render(
        "import.html",
        &Chrome::for_actor(actor),
        json!({
            "columns": columns,
            "report": report,
            "errors": form_errors(errors, &["file"], "import-"),
            "apply_valid": apply_valid,
            "max_mib": mamori_personnel_csv::MAX_BYTES / (1024 * 1024),
            "max_rows": mamori_personnel_csv::MAX_ROWS,
        }),
    )?;
    Ok((status, html).into_response())
}

/// The upload. The CSRF token must come first, before the file is read.
async fn import_submit(
    State(state): State<AppState>,
    req: Require<ImportPersonnel>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, PageError> {
    let bad_form = || PageError(AppError::invalid("form", "error.form_encoding", &[]));
    let mut mp = multipart.map_err(|_| bad_form())?;
    let csrf_ok = match mp.next_field().await {
        Ok(Some(f)) if f.name() == Some("csrf") => match f.text().await {
            Ok(sent) => {
                !req.actor.session.csrf.is_empty() && token::same(&sent, &req.actor.session.csrf)
            }
            Err(_) => false,
        },
        _ => false,
    };
    if !csrf_ok {
        return Err(PageError(AppError::Csrf));
    }
    let mut apply_valid = false;
    let mut file: Option<Vec<u8>> = None;
    let mut errors = Vec::new();
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                errors.push(FieldError::new(
                    "file",
                    "pages.import.unreadable",
                    &[(
                        "max",
                        (mamori_personnel_csv::MAX_BYTES / (1024 * 1024)).to_string(),
                    )],
                ));
                break;
            }
        };
        match field.name() {
            Some("apply_valid") => {
                apply_valid = matches!(field.text().await.as_deref(), Ok("1" | "on" | "true"))
            }
            Some("file") => match field.bytes().await {
                Ok(b) => file = Some(b.to_vec()),
                Err(_) => {
                    errors.push(FieldError::new(
                        "file",
                        "pages.import.unreadable",
                        &[(
                            "max",
                            (mamori_personnel_csv::MAX_BYTES / (1024 * 1024)).to_string(),
                        )],
                    ));
                    break;
                }
            },
            _ => {}
        }
    }
    let bytes = match file {
        Some(b) if !b.is_empty() && errors.is_empty() => b,
        _ => {
            if errors.is_empty() {
                errors.push(FieldError::new("file", "pages.import.no_file", &[]));
            }
            return render_import(
                &req.actor,
                None,
                &errors,
                apply_valid,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    let report = import_csv(
        &state,
        &req.actor.who(),
        req.actor.person_id,
        Some(&req.scope),
        &bytes,
        ImportOptions { apply_valid },
    )
    .await?;
    let status = if report.errors.is_empty() || report.applied {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_import(&req.actor, Some(&report), &[], apply_valid, status)
}

// ---------------------------------------------------------------------------
// Accounts

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct SharedForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    justification: String,
    /// The owner's employee number.
    #[serde(default)]
    owner: String,
    #[serde(default)]
    org_unit_id: String,
}

impl SharedForm {
    const FIELDS: &'static [&'static str] = &["login", "justification", "owner", "org_unit_id"];
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ForceForm {
    /// A unit id, or `ward` for everyone.
    #[serde(default)]
    unit: String,
    #[serde(default)]
    reason: String,
}

impl ForceForm {
    const FIELDS: &'static [&'static str] = &["unit", "reason"];
}

#[derive(Default)]
struct AccountForms<'a> {
    shared: Option<(&'a SharedForm, &'a [FieldError])>,
    force: Option<(&'a ForceForm, &'a [FieldError])>,
}

async fn accounts_page(
    State(state): State<AppState>,
    req: Require<ManageAccounts>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = match q.notice(&[
        ("shared", "pages.notice.shared_created"),
        ("forced", "pages.notice.force_many"),
    ]) {
        Some(key) => Some(crate::web::i18n::t(
            crate::web::i18n::current(),
            key,
            &[(
                "count",
                q.count
                    .as_deref()
                    .and_then(parse_count)
                    .unwrap_or(0)
                    .to_string(),
            )],
        )),
        None => None,
    };
    render_accounts(
        &state,
        &req.actor,
        AccountForms::default(),
        notice,
        StatusCode::OK,
    )
    .await
}

fn parse_count(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

async fn unit_set(
    conn: &mut Conn,
    scope: Option<&ActorScope>,
) -> Result<Option<HashSet<OrgUnitId>>, AppError> {
    Ok(match scope {
        None => Some(HashSet::new()),
        Some(s) => scope_units(conn, s).await?.map(|v| v.into_iter().collect()),
    })
}

async fn render_accounts(
    state: &AppState,
    actor: &Actor,
    forms: AccountForms<'_>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let today = today(state);
    let now = state.clock().unix();
    let manage = actor.scope(Action::ManageAccounts);
    let shared_scope = actor.scope(Action::ManageSharedAccounts);
    let ward_force = actor.scope(Action::ForceChangeAll) == Some(ActorScope::Ward);
    let mut conn = state.db().pool().acquire().await?;
    let units = crate::org::store::list_units(&mut conn).await?;
    let names: HashMap<OrgUnitId, &str> = units.iter().map(|u| (u.id, u.name.as_str())).collect();
    let manage_units = unit_set(&mut conn, manage.as_ref()).await?;
    let shared_units = unit_set(&mut conn, shared_scope.as_ref()).await?;
    let covers = |set: &Option<HashSet<OrgUnitId>>, u: Option<OrgUnitId>| match (set, u) {
        (None, _) => true,
        (Some(s), Some(u)) => s.contains(&u),
        (Some(_), None) => false,
    };
    let live = |u: &crate::org::OrgUnit| {
        period_state(&u.valid_from, u.valid_to.as_deref(), &today) != "ended"
    };

    let shared: Vec<Value> = crate::identity::store::list_shared(&mut conn)
        .await?
        .into_iter()
        .filter(|(_, _, _, _, unit)| covers(&manage_units, unit.map(OrgUnitId)))
        .map(|(id, login, justification, owner, unit)| {
            json!({ "id": id, "login": login, "justification": justification, "owner": owner,
                    "unit_id": unit, "unit_name": unit.and_then(|u| names.get(&OrgUnitId(u)).copied()) })
        })
        .collect();
    // Accounts that need a look: locked, or waiting for a password change.
    let list_units = manage_units
        .as_ref()
        .map(|s| s.iter().copied().collect::<Vec<_>>());
    let attention: Vec<Value> = store::list_people(&mut conn, list_units.as_deref(), "", now, 5000)
        .await?
        .iter()
        .filter(|p| p.status != "retired")
        .filter(|p| {
            p.account
                .as_ref()
                .is_some_and(|a| !a.disabled && (a.locked || a.must_change))
        })
        .take(LIST_LIMIT as usize)
        .map(person_row)
        .collect();
    let html = render(
        "accounts.html",
        &Chrome::for_actor(actor),
        json!({
            "notice": notice,
            "shared": shared,
            "attention": attention,
            "can_create_shared": shared_scope.is_some(),
            "shared_units": unit_options(&units, &today, |u| live(u) && covers(&shared_units, Some(u.id))),
            "shared_form": forms.shared.map(|(f, _)| f.clone()).unwrap_or_default(),
            "shared_errors": form_errors(forms.shared.map(|f| f.1).unwrap_or(&[]), SharedForm::FIELDS, "shared-"),
            "ward_force": ward_force,
            "force_units": unit_options(&units, &today, |u| live(u) && covers(&manage_units, Some(u.id))),
            "force_form": forms.force.map(|(f, _)| f.clone()).unwrap_or_default(),
            "force_errors": form_errors(forms.force.map(|f| f.1).unwrap_or(&[]), ForceForm::FIELDS, "force-"),
        }),
    )?;
    Ok((status, html).into_response())
}

/// A shared account for a 課 or 係: only with a justification and a named
/// owner (K17.2).
async fn create_shared(
    State(state): State<AppState>,
    req: Require<ManageSharedAccounts>,
    CsrfForm(form): CsrfForm<SharedForm>,
) -> Result<Response, PageError> {
    let mut errors = Vec::new();
    let owner = match form.owner.trim() {
        "" => {
            errors.push(FieldError::new("owner", "field.required", &[]));
            None
        }
        number => {
            let mut conn = state.db().pool().acquire().await?;
            let p = store::person_by_number(&mut conn, number).await?;
            if p.is_none() {
                errors.push(FieldError::new("owner", "people.no_such_person", &[]));
            }
            p.map(|p| p.id)
        }
    };
    let unit = match form.org_unit_id.trim() {
        "" => {
            errors.push(FieldError::new("org_unit_id", "field.required", &[]));
            None
        }
        s => {
            let u = parse_id(s).map(OrgUnitId);
            if u.is_none() {
                errors.push(FieldError::new("org_unit_id", "pages.form.bad_choice", &[]));
            }
            u
        }
    };
    let result = match (owner, unit) {
        (Some(owner_person_id), Some(org_unit_id)) if errors.is_empty() => {
            let input = SharedAccountInput {
                login: form.login.trim().to_string(),
                justification: form.justification.clone(),
                owner_person_id,
                org_unit_id,
            };
            create_shared_account(&state, &req.actor, &req.scope, input)
                .await
                .map(|_| ())
        }
        _ => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/accounts?done=shared").into_response()),
        Err(AppError::Invalid(errors)) => {
            let errors: Vec<FieldError> = errors
                .into_iter()
                .map(|mut e| {
                    if e.field == "owner_person_id" {
                        e.field = "owner".into();
                    }
                    e
                })
                .collect();
            render_accounts(
                &state,
                &req.actor,
                AccountForms {
                    shared: Some((&form, &errors)),
                    ..Default::default()
                },
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// A forced password change for a unit, or the whole ward for those who
/// may (K11.1.5), always with a reason.
async fn force_change(
    State(state): State<AppState>,
    req: Require<ManageAccounts>,
    CsrfForm(form): CsrfForm<ForceForm>,
) -> Result<Response, PageError> {
    let mut errors = Vec::new();
    let reason = form.reason.trim();
    crate::web::json::check_text(&mut errors, "reason", reason, 200, true);
    let target = match form.unit.trim() {
        "" => {
            errors.push(FieldError::new("unit", "field.required", &[]));
            None
        }
        "ward" => Some(None),
        s => match parse_id(s) {
            Some(id) => Some(Some(OrgUnitId(id))),
            None => {
                errors.push(FieldError::new("unit", "pages.form.bad_choice", &[]));
                None
            }
        },
    };
    let result = match target {
        Some(unit) if errors.is_empty() => match unit {
            Some(u) => force_change_many(&state, &req.actor, &req.scope, Some(u), reason).await,
            None => match req.actor.scope(Action::ForceChangeAll) {
                Some(ward) => force_change_many(&state, &req.actor, &ward, None, reason).await,
                None => Err(AppError::Forbidden("force_change_all")),
            },
        },
        _ => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(n) => Ok(Redirect::to(&format!("/accounts?done=forced&count={n}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_accounts(
                &state,
                &req.actor,
                AccountForms {
                    force: Some((&form, &errors)),
                    ..Default::default()
                },
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// Settings

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct SettingForm {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

async fn settings_page(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[("saved", "pages.notice.setting_saved")]);
    render_settings(&state, &req.actor, None, notice, StatusCode::OK).await
}

async fn render_settings(
    state: &AppState,
    actor: &Actor,
    form: Option<(&SettingForm, &[FieldError])>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut conn = state.db().pool().acquire().await?;
    let settings: Vec<Value> = crate::settings::all(&mut conn)
        .await?
        .into_iter()
        .map(|(d, v)| {
            let mine = form.filter(|(f, _)| f.key == d.key);
            let id = d.key.replace('.', "-");
            json!({
                "key": d.key,
                "id": id,
                "value": v,
                "typed": mine.map(|(f, _)| f.value.clone()),
                "min": d.min,
                "max": d.max,
                "default": d.default,
                "clause": d.clause,
                "errors": form_errors(mine.map(|m| m.1).unwrap_or(&[]), &["value"], &format!("{id}-")),
            })
        })
        .collect();
    // An error about no known setting (a tampered key) shows at the top.
    let stray = form
        .filter(|(f, _)| crate::settings::def(&f.key).is_none())
        .map(|(_, e)| e)
        .unwrap_or(&[]);
    let html = render(
        "settings.html",
        &Chrome::for_actor(actor),
        json!({ "settings": settings, "notice": notice, "errors": form_errors(stray, &[], "") }),
    )?;
    Ok((status, html).into_response())
}

async fn settings_submit(
    State(state): State<AppState>,
    req: Require<ManageSettings>,
    CsrfForm(form): CsrfForm<SettingForm>,
) -> Result<Response, PageError> {
    let result = match form.value.trim().parse::<i64>() {
        Ok(v) => crate::identity::api::change_setting(&state, &req.actor, form.key.trim(), v).await,
        Err(_) => Err(AppError::invalid(
            "value",
            "pages.settings.not_a_number",
            &[],
        )),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/settings?done=saved").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_settings(
                &state,
                &req.actor,
                Some((&form, &errors)),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_form_drops_fields_the_kind_does_not_use() {
        let form = EventForm {
            kind: "retire".into(),
            employee_number: " 00123 ".into(),
            effective_date: "R8.4.1".into(),
            name_kanji: "江戸川 太郎".into(),
            birth_date: "not a date".into(),
            org_unit_code: "somu".into(),
            note: "定年".into(),
            ..Default::default()
        };
        let input = form.to_input();
        assert_eq!(input.employee_number, "00123");
        assert_eq!(input.name_kanji, None);
        assert_eq!(input.birth_date, None);
        assert_eq!(input.org_unit_code, None);
        assert_eq!(input.note.as_deref(), Some("定年"));
        let hire = EventForm {
            kind: "hire".into(),
            birth_date: "S55.1.23".into(),
            org_unit_code: "somu".into(),
            ..Default::default()
        }
        .to_input();
        assert_eq!(hire.birth_date.as_deref(), Some("S55.1.23"));
        assert_eq!(hire.org_unit_code.as_deref(), Some("somu"));
    }

    #[test]
    fn blank_required_fields_say_required() {
        let form = EventForm {
            employee_number: "".into(),
            effective_date: "someday".into(),
            ..Default::default()
        };
        let errors = vec![
            FieldError {
                field: "employee_number".into(),
                code: "people.bad_employee_number".into(),
                clause: None,
                message: String::new(),
            },
            FieldError {
                field: "effective_date".into(),
                code: "field.bad_date".into(),
                clause: None,
                message: String::new(),
            },
        ];
        let out = form.blank_is_required(errors);
        assert_eq!(out[0].code, "field.required");
        assert_eq!(out[1].code, "field.bad_date");
    }
}
