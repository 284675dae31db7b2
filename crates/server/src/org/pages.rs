//! Pages for the organisation (Y4, K8, 別表第一/第二): the unit tree with
//! the ward-wide role holders, one unit with its people, role assignments
//! and reporting chain, and the forms that change them. The helpers at the
//! bottom (form errors, ids, notices) are shared with the people pages.

use super::service::{self, AssignInput, UnitInput};
use super::{store, OrgUnit, RoleAssignment, System, UnitKind};
use crate::app::{AppState, Routes};
use crate::auth::perm::{AssignRoles, EditOrg, ViewOrg};
use crate::auth::{Actor, ActorScope, Require};
use crate::clock::date_str;
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId, RoleAssignmentId, SystemId};
use crate::web::csrf::CsrfForm;
use crate::web::error::{AppError, FieldError, PageError};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use mamori_policy::permission::{self, Action};
use mamori_policy::Role;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

pub fn routes(r: Routes) -> Routes {
    r.get("/org", org_page)
        .post("/org/units", create_unit)
        .post("/org/roles", assign_ward_role)
        .get("/org/units/{id}", unit_page)
        .post("/org/units/{id}", update_unit)
        .post("/org/units/{id}/roles", assign_unit_role)
        .post("/org/roles/{id}/end", end_role)
}

/// The three ward-wide posts shown at the top of the org page (Y4.1–3).
const WARD_POSTS: [Role; 3] = [
    Role::Cio,
    Role::SecurityDirector,
    Role::SecurityChiefManager,
];

// ---------------------------------------------------------------------------
// The org tree

async fn org_page(
    State(state): State<AppState>,
    req: Require<ViewOrg>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[
        ("unit_created", "pages.notice.unit_created"),
        ("assigned", "pages.notice.role_assigned"),
        ("ended", "pages.notice.role_ended"),
    ]);
    render_org(
        &state,
        &req.actor,
        OrgForms::default(),
        notice,
        StatusCode::OK,
    )
    .await
}

/// Forms on the org page that may come back with errors.
#[derive(Default)]
struct OrgForms<'a> {
    unit: Option<(&'a UnitForm, &'a [FieldError])>,
    assign: Option<(&'a AssignForm, &'a [FieldError])>,
    end: Option<(i64, &'a [FieldError])>,
}

async fn render_org(
    state: &AppState,
    actor: &Actor,
    forms: OrgForms<'_>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let today = today(state);
    let mut conn = state.db().pool().acquire().await?;
    let units = store::list_units(&mut conn).await?;
    let tree = unit_tree(&units, &today);
    let by_id: HashMap<OrgUnitId, &OrgUnit> = units.iter().map(|u| (u.id, u)).collect();
    let systems = store::list_systems(&mut conn).await?;
    let mut links = PersonLinks::new(actor);
    let assign_scope = actor.scope(Action::AssignRoles);
    // Ward-wide assignments: current and coming ones, with the posts nobody holds.
    let mut all = store::list_assignments(&mut conn, None, None, None).await?;
    sort_by_role(&mut all);
    let mut ward = Vec::new();
    for a in all
        .iter()
        .filter(|a| a.org_unit_id.is_none() && a.system_id.is_none())
    {
        if period_state(&a.valid_from, a.valid_to.as_deref(), &today) == "ended" {
            continue;
        }
        let can_end = may_end(actor, assign_scope.as_ref(), a, false);
        ward.push(
            assignment_view(&mut conn, &mut links, a, &today, &by_id, &systems, can_end).await?,
        );
    }
    let vacant: Vec<&str> = WARD_POSTS
        .iter()
        .filter(|r| {
            !all.iter().any(|a| {
                a.org_unit_id.is_none()
                    && a.role == r.code()
                    && period_state(&a.valid_from, a.valid_to.as_deref(), &today) == "current"
            })
        })
        .map(|r| r.code())
        .collect();
    let edit = actor.scope(Action::EditOrg).is_some();
    let unit_form = forms.unit.map(|(f, _)| f.clone()).unwrap_or_default();
    let ward_roles: Vec<&str> = if assign_scope == Some(ActorScope::Ward) {
        assignable_roles(actor)
            .into_iter()
            .filter(|r| r.is_ward_wide())
            .map(|r| r.code())
            .collect()
    } else {
        vec![]
    };
    let html = render(
        "org.html",
        &Chrome::for_actor(actor),
        json!({
            "today": today,
            "tree": tree,
            "ward": ward,
            "vacant": vacant,
            "notice": notice,
            "can_edit": edit,
            "kinds": UnitKind::ALL.iter().map(|k| k.code()).collect::<Vec<_>>(),
            "parents": unit_options(&units, &today, |_| true),
            "unit_form": unit_form,
            "unit_errors": form_errors(forms.unit.map(|f| f.1).unwrap_or(&[]), UnitForm::FIELDS, "new-"),
            "ward_roles": ward_roles,
            "assign_form": forms.assign.map(|(f, _)| f.clone()).unwrap_or_default(),
            "assign_errors": form_errors(forms.assign.map(|f| f.1).unwrap_or(&[]), AssignForm::FIELDS, "assign-"),
            "end_id": forms.end.map(|e| e.0),
            "end_errors": end_errors(forms.end),
        }),
    )?;
    Ok((status, html).into_response())
}

/// The unit form as typed (every field a string, so nothing typed is lost).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct UnitForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    parent_id: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
}

impl UnitForm {
    const FIELDS: &'static [&'static str] = &[
        "code",
        "name",
        "name_en",
        "kind",
        "parent_id",
        "valid_from",
        "valid_to",
    ];

    fn from_unit(u: &OrgUnit) -> UnitForm {
        UnitForm {
            code: u.code.clone(),
            name: u.name.clone(),
            name_en: u.name_en.clone(),
            kind: u.kind.code().into(),
            parent_id: u.parent_id.map(|p| p.0.to_string()).unwrap_or_default(),
            valid_from: u.valid_from.clone(),
            valid_to: u.valid_to.clone().unwrap_or_default(),
        }
    }

    /// The typed input, or what is wrong with the choices (a tampered
    /// select; the service checks everything else).
    fn to_input(&self) -> Result<UnitInput, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = UnitKind::parse(self.kind.trim());
        if kind.is_none() {
            errors.push(FieldError::new("kind", "pages.form.bad_choice", &[]));
        }
        let parent_id = match self.parent_id.trim() {
            "" => None,
            s => match parse_id(s) {
                Some(id) => Some(OrgUnitId(id)),
                None => {
                    errors.push(FieldError::new("parent_id", "pages.form.bad_choice", &[]));
                    None
                }
            },
        };
        match kind {
            Some(kind) if errors.is_empty() => Ok(UnitInput {
                code: self.code.trim().to_string(),
                name: self.name.clone(),
                name_en: self.name_en.clone(),
                kind,
                parent_id,
                valid_from: non_empty(&self.valid_from),
                valid_to: non_empty(&self.valid_to),
            }),
            _ => Err(errors),
        }
    }
}

async fn create_unit(
    State(state): State<AppState>,
    req: Require<EditOrg>,
    CsrfForm(form): CsrfForm<UnitForm>,
) -> Result<Response, PageError> {
    let result = match form.to_input() {
        Ok(input) => service::create_unit(&state, &req.actor, input).await,
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(unit) => {
            Ok(Redirect::to(&format!("/org/units/{}?done=created", unit.id)).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            render_org(
                &state,
                &req.actor,
                OrgForms {
                    unit: Some((&form, &errors)),
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
// One unit

async fn unit_page(
    State(state): State<AppState>,
    req: Require<ViewOrg>,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)
        .map(OrgUnitId)
        .ok_or(AppError::NotFound("org_unit"))?;
    let notice = q.notice(&[
        ("created", "pages.notice.unit_created"),
        ("saved", "pages.notice.unit_saved"),
        ("assigned", "pages.notice.role_assigned"),
        ("ended", "pages.notice.role_ended"),
    ]);
    render_unit(
        &state,
        &req.actor,
        id,
        UnitForms::default(),
        notice,
        StatusCode::OK,
    )
    .await
}

#[derive(Default)]
struct UnitForms<'a> {
    edit: Option<(&'a UnitForm, &'a [FieldError])>,
    assign: Option<(&'a AssignForm, &'a [FieldError])>,
    end: Option<(i64, &'a [FieldError])>,
}

async fn render_unit(
    state: &AppState,
    actor: &Actor,
    id: OrgUnitId,
    forms: UnitForms<'_>,
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let today = today(state);
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    let unit = store::get_unit(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("org_unit"))?;
    let units = store::list_units(&mut conn).await?;
    let by_id: HashMap<OrgUnitId, &OrgUnit> = units.iter().map(|u| (u.id, u)).collect();
    let systems = store::list_systems(&mut conn).await?;
    let ancestors = store::ancestors(&mut conn, id).await?;
    let path: Vec<Value> = ancestors
        .iter()
        .rev()
        .filter(|a| **a != id)
        .filter_map(|a| by_id.get(a))
        .map(|u| json!({ "id": u.id, "name": u.name }))
        .collect();
    let children: Vec<Value> = units
        .iter()
        .filter(|u| u.parent_id == Some(id))
        .map(|u| unit_view(u, &today))
        .collect();

    // People in the unit; names link only where the viewer may see people.
    let mut links = PersonLinks::new(actor);
    let unit_linkable = links.unit_in_scope(&mut conn, Some(id)).await?;
    let people: Vec<Value> = crate::people::store::list_people(&mut conn, Some(&[id]), "", now, 1000)
        .await?
        .into_iter()
        .filter(|p| p.status != "retired")
        .map(|p| json!({ "id": p.id, "name": p.name_kanji, "title": p.title, "status": p.status, "link": unit_linkable }))
        .collect();

    let assign_scope = actor.scope(Action::AssignRoles);
    let assign_here = match &assign_scope {
        Some(s) => service::in_scope(&mut conn, s, id).await?,
        None => false,
    };
    let mut current = Vec::new();
    let mut past = Vec::new();
    let mut assignments = store::list_assignments(&mut conn, None, Some(id), None).await?;
    sort_by_role(&mut assignments);
    for a in assignments {
        let ended = period_state(&a.valid_from, a.valid_to.as_deref(), &today) == "ended";
        let can_end = !ended && may_end(actor, assign_scope.as_ref(), &a, assign_here);
        let v =
            assignment_view(&mut conn, &mut links, &a, &today, &by_id, &systems, can_end).await?;
        if ended {
            past.push(v);
        } else {
            current.push(v);
        }
    }
    let chain: Vec<Value> = service::reporting_chain(&mut conn, Some(id), &today)
        .await?
        .into_iter()
        .map(|s| {
            let unit_name = s.org_unit_id.and_then(|u| by_id.get(&u)).map(|u| u.name.clone());
            json!({ "role": s.role, "person_id": s.person_id, "person_name": s.person_name, "unit_id": s.org_unit_id, "unit_name": unit_name })
        })
        .collect();

    let can_edit = actor.scope(Action::EditOrg).is_some();
    let edit_form = forms
        .edit
        .map(|(f, _)| f.clone())
        .unwrap_or_else(|| UnitForm::from_unit(&unit));
    // The parent may be any unit except this one and those below it.
    let below: HashSet<OrgUnitId> = store::descendants(&mut conn, id)
        .await?
        .into_iter()
        .collect();
    let roles: Vec<&str> = if assign_here {
        // 職員等 comes with the unit itself, so it is never assigned by hand.
        assignable_roles(actor)
            .into_iter()
            .filter(|r| !r.is_ward_wide() && *r != Role::Staff)
            .map(|r| r.code())
            .collect()
    } else {
        vec![]
    };
    let html = render(
        "org_unit.html",
        &Chrome::for_actor(actor),
        json!({
            "today": today,
            "unit": unit_view(&unit, &today),
            "path": path,
            "children": children,
            "people": people,
            "assignments": current,
            "past": past,
            "chain": chain,
            "notice": notice,
            "can_edit": can_edit,
            "kinds": UnitKind::ALL.iter().map(|k| k.code()).collect::<Vec<_>>(),
            "parents": unit_options(&units, &today, |u| !below.contains(&u.id)),
            "edit_form": edit_form,
            "edit_errors": form_errors(forms.edit.map(|f| f.1).unwrap_or(&[]), UnitForm::FIELDS, "edit-"),
            "roles": roles,
            "systems": systems.iter().map(|s| json!({ "id": s.id, "code": s.code, "name": s.name })).collect::<Vec<_>>(),
            "assign_form": forms.assign.map(|(f, _)| f.clone()).unwrap_or_default(),
            "assign_errors": form_errors(forms.assign.map(|f| f.1).unwrap_or(&[]), AssignForm::FIELDS, "assign-"),
            "end_id": forms.end.map(|e| e.0),
            "end_errors": end_errors(forms.end),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn update_unit(
    State(state): State<AppState>,
    req: Require<EditOrg>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<UnitForm>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)
        .map(OrgUnitId)
        .ok_or(AppError::NotFound("org_unit"))?;
    // An empty start date would silently move the unit's start to today.
    let result = if form.valid_from.trim().is_empty() {
        Err(AppError::invalid("valid_from", "field.required", &[]))
    } else {
        match form.to_input() {
            Ok(input) => service::update_unit(&state, &req.actor, id, input)
                .await
                .map(|_| ()),
            Err(errors) => Err(AppError::Invalid(errors)),
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/org/units/{id}?done=saved")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_unit(
                &state,
                &req.actor,
                id,
                UnitForms {
                    edit: Some((&form, &errors)),
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
// Role assignments

/// The role form as typed. The person is named by employee number (anyone)
/// or chosen from the unit's people.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct AssignForm {
    #[serde(default)]
    employee_number: String,
    #[serde(default)]
    person_id: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    system_id: String,
    #[serde(default)]
    valid_from: String,
    #[serde(default)]
    valid_to: String,
}

impl AssignForm {
    const FIELDS: &'static [&'static str] = &[
        "employee_number",
        "person_id",
        "role",
        "system_id",
        "valid_from",
        "valid_to",
    ];

    async fn to_input(
        &self,
        conn: &mut Conn,
        unit: Option<OrgUnitId>,
    ) -> Result<Result<AssignInput, Vec<FieldError>>, AppError> {
        let mut errors = Vec::new();
        let number = self.employee_number.trim();
        let person = if !number.is_empty() {
            let found = crate::people::store::person_by_number(conn, number).await?;
            if found.is_none() {
                errors.push(FieldError::new(
                    "employee_number",
                    "people.no_such_person",
                    &[],
                ));
            }
            found.map(|p| p.id)
        } else if !self.person_id.trim().is_empty() {
            let id = parse_id(&self.person_id).map(PersonId);
            if id.is_none() {
                errors.push(FieldError::new("person_id", "pages.form.bad_choice", &[]));
            }
            id
        } else {
            errors.push(FieldError::new(
                "employee_number",
                "pages.assign.person_required",
                &[],
            ));
            None
        };
        let system_id = match self.system_id.trim() {
            "" => None,
            s => match parse_id(s) {
                Some(id) => Some(SystemId(id)),
                None => {
                    errors.push(FieldError::new("system_id", "pages.form.bad_choice", &[]));
                    None
                }
            },
        };
        let role = self.role.trim();
        if role.is_empty() {
            errors.push(FieldError::new("role", "field.required", &[]));
        }
        // Ward-wide roles are held without a unit whatever page they come from.
        let org_unit_id = match role.parse::<Role>() {
            Ok(r) if r.is_ward_wide() => None,
            _ => unit,
        };
        Ok(match person {
            Some(person_id) if errors.is_empty() => Ok(AssignInput {
                person_id,
                role: role.to_string(),
                org_unit_id,
                system_id,
                valid_from: non_empty(&self.valid_from),
                valid_to: non_empty(&self.valid_to),
            }),
            _ => Err(errors),
        })
    }
}

async fn assign_unit_role(
    State(state): State<AppState>,
    req: Require<AssignRoles>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<AssignForm>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)
        .map(OrgUnitId)
        .ok_or(AppError::NotFound("org_unit"))?;
    let input = {
        let mut conn = state.db().pool().acquire().await?;
        if store::get_unit(&mut conn, id).await?.is_none() {
            return Err(AppError::NotFound("org_unit").into());
        }
        form.to_input(&mut conn, Some(id)).await?
    };
    let result = match input {
        Ok(input) => service::assign_role(&state, &req.actor, &req.scope, input)
            .await
            .map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/org/units/{id}?done=assigned")).into_response()),
        Err(AppError::Invalid(errors)) => {
            render_unit(
                &state,
                &req.actor,
                id,
                UnitForms {
                    assign: Some((&form, &errors)),
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

/// Assigns a ward-wide role (最高情報統括責任者, セキュリティ統括者,
/// セキュリティ総括管理者, 外部監査人) from the org page.
async fn assign_ward_role(
    State(state): State<AppState>,
    req: Require<AssignRoles>,
    CsrfForm(form): CsrfForm<AssignForm>,
) -> Result<Response, PageError> {
    let input = {
        let mut conn = state.db().pool().acquire().await?;
        form.to_input(&mut conn, None).await?
    };
    let result = match input {
        Ok(input) => service::assign_role(&state, &req.actor, &req.scope, input)
            .await
            .map(|_| ()),
        Err(errors) => Err(AppError::Invalid(errors)),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/org?done=assigned").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_org(
                &state,
                &req.actor,
                OrgForms {
                    assign: Some((&form, &errors)),
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

#[derive(Debug, Clone, Default, Deserialize)]
struct EndForm {
    /// The unit page to go back to (empty for the org page).
    #[serde(default)]
    unit: String,
    /// Last day the role holds; empty for yesterday.
    #[serde(default)]
    valid_to: String,
}

async fn end_role(
    State(state): State<AppState>,
    req: Require<AssignRoles>,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<EndForm>,
) -> Result<Response, PageError> {
    let aid = parse_id(&id).ok_or(AppError::NotFound("role_assignment"))?;
    let back = parse_id(&form.unit).map(OrgUnitId);
    match service::end_role(
        &state,
        &req.actor,
        &req.scope,
        RoleAssignmentId(aid),
        non_empty(&form.valid_to).as_deref(),
    )
    .await
    {
        Ok(a) => Ok(Redirect::to(&match a.org_unit_id.or(back) {
            Some(u) => format!("/org/units/{u}?done=ended"),
            None => "/org?done=ended".into(),
        })
        .into_response()),
        Err(AppError::Invalid(errors)) => match back {
            Some(u) => {
                render_unit(
                    &state,
                    &req.actor,
                    u,
                    UnitForms {
                        end: Some((aid, &errors)),
                        ..Default::default()
                    },
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => {
                render_org(
                    &state,
                    &req.actor,
                    OrgForms {
                        end: Some((aid, &errors)),
                        ..Default::default()
                    },
                    None,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
        },
        Err(e) => Err(e.into()),
    }
}

fn end_errors(end: Option<(i64, &[FieldError])>) -> Value {
    match end {
        Some((id, errors)) => form_errors(errors, &["valid_to"], &format!("end-{id}-")),
        None => form_errors(&[], &[], ""),
    }
}

/// Roles the actor may hand out (permission::may_assign), in the policy's order.
fn assignable_roles(actor: &Actor) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| {
            actor
                .roles
                .iter()
                .any(|h| permission::may_assign(h.role, *r))
        })
        .collect()
}

/// In the policy's order of roles (Role::ALL), then by start date.
fn sort_by_role(list: &mut [RoleAssignment]) {
    let rank = |code: &str| {
        Role::ALL
            .iter()
            .position(|r| r.code() == code)
            .unwrap_or(Role::ALL.len())
    };
    list.sort_by(|a, b| {
        (rank(&a.role), &a.valid_from, a.id).cmp(&(rank(&b.role), &b.valid_from, b.id))
    });
}

/// Whether to offer the end button. The service decides again on submit.
fn may_end(
    actor: &Actor,
    assign_scope: Option<&ActorScope>,
    a: &RoleAssignment,
    unit_in_scope: bool,
) -> bool {
    let Ok(role) = a.role.parse::<Role>() else {
        return false;
    };
    let may = actor
        .roles
        .iter()
        .any(|h| permission::may_assign(h.role, role));
    let reach = match (assign_scope, a.org_unit_id) {
        (Some(ActorScope::Ward), _) => true,
        (Some(_), Some(_)) => unit_in_scope,
        _ => false,
    };
    may && reach
}

#[allow(clippy::too_many_arguments)]
async fn assignment_view(
    conn: &mut Conn,
    links: &mut PersonLinks,
    a: &RoleAssignment,
    today: &str,
    units: &HashMap<OrgUnitId, &OrgUnit>,
    systems: &[System],
    can_end: bool,
) -> Result<Value, AppError> {
    let role = a.role.parse::<Role>().ok();
    let system = a.system_id.and_then(|s| systems.iter().find(|x| x.id == s));
    let link = links.person(conn, a.person_id).await?;
    Ok(json!({
        "id": a.id,
        "person_id": a.person_id,
        "person_name": a.person_name,
        "link": link,
        "role": a.role,
        "clause": role.map(|r| r.clause()),
        "unit_id": a.org_unit_id,
        "unit_name": a.org_unit_id.and_then(|u| units.get(&u)).map(|u| u.name.clone()),
        "system_name": system.map(|s| s.name.clone()),
        "valid_from": a.valid_from,
        "valid_to": a.valid_to,
        "state": period_state(&a.valid_from, a.valid_to.as_deref(), today),
        "can_end": can_end,
    }))
}

// ---------------------------------------------------------------------------
// Helpers shared with the people pages

/// `?done=…` after a redirect; only known values become a notice.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    pub done: Option<String>,
    #[serde(default)]
    pub count: Option<String>,
}

impl NoticeQuery {
    /// The catalog key for `done`, if it is one of `known`.
    pub(crate) fn notice(&self, known: &[(&str, &'static str)]) -> Option<&'static str> {
        let done = self.done.as_deref()?;
        known.iter().find(|(k, _)| *k == done).map(|(_, key)| *key)
    }
}

pub(crate) fn today(state: &AppState) -> String {
    date_str(state.clock().today())
}

/// A positive id typed or chosen in a form; anything else is `None`.
pub(crate) fn parse_id(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n: &i64| *n > 0)
}

pub(crate) fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Field errors for a template: `by` maps each field to its messages (shown
/// next to the field), `summary` lists them all in order with the anchor
/// of the field when it is on the form (`prefix` keeps ids unique on pages
/// with several forms).
pub(crate) fn form_errors(errors: &[FieldError], fields: &[&str], prefix: &str) -> Value {
    let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut summary = Vec::new();
    for e in errors {
        let on_form = fields.contains(&e.field.as_str());
        if on_form {
            by.entry(e.field.as_str())
                .or_default()
                .push(e.message.as_str());
        }
        summary.push(json!({
            "message": e.message,
            "clause": e.clause,
            "anchor": on_form.then(|| format!("{prefix}{}", e.field)),
        }));
    }
    json!({ "any": !errors.is_empty(), "by": by, "summary": summary })
}

/// Where a validity period stands on `today`: `current`, `future` or `ended`.
pub(crate) fn period_state(from: &str, to: Option<&str>, today: &str) -> &'static str {
    if to.is_some_and(|t| t < today) {
        "ended"
    } else if from > today {
        "future"
    } else {
        "current"
    }
}

pub(crate) fn unit_view(u: &OrgUnit, today: &str) -> Value {
    json!({
        "id": u.id,
        "code": u.code,
        "name": u.name,
        "name_en": u.name_en,
        "kind": u.kind.code(),
        "parent_id": u.parent_id,
        "valid_from": u.valid_from,
        "valid_to": u.valid_to,
        "state": period_state(&u.valid_from, u.valid_to.as_deref(), today),
    })
}

/// The units in tree order with their depth. Units whose parent is missing
/// are roots; a cycle (which the service refuses) cannot loop forever.
pub(crate) fn tree_order(units: &[OrgUnit]) -> Vec<(usize, &OrgUnit)> {
    let ids: HashSet<OrgUnitId> = units.iter().map(|u| u.id).collect();
    let mut children: HashMap<OrgUnitId, Vec<&OrgUnit>> = HashMap::new();
    let mut roots = Vec::new();
    for u in units {
        match u.parent_id.filter(|p| ids.contains(p) && *p != u.id) {
            Some(p) => children.entry(p).or_default().push(u),
            None => roots.push(u),
        }
    }
    // Within a parent: 部 before 課 before 学校 before outside bodies, then by code.
    let rank = |u: &OrgUnit| {
        (
            UnitKind::ALL.iter().position(|k| *k == u.kind).unwrap_or(0),
            u.code.clone(),
        )
    };
    roots.sort_by_key(|u| rank(u));
    for list in children.values_mut() {
        list.sort_by_key(|u| rank(u));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    fn walk<'a>(
        u: &'a OrgUnit,
        depth: usize,
        children: &HashMap<OrgUnitId, Vec<&'a OrgUnit>>,
        seen: &mut HashSet<OrgUnitId>,
        out: &mut Vec<(usize, &'a OrgUnit)>,
    ) {
        if !seen.insert(u.id) {
            return;
        }
        out.push((depth, u));
        for c in children.get(&u.id).into_iter().flatten() {
            walk(c, depth + 1, children, seen, out);
        }
    }
    for r in roots {
        walk(r, 0, &children, &mut seen, &mut out);
    }
    // Units only reachable through a cycle still appear, at the top level.
    for u in units {
        walk(u, 0, &children, &mut seen, &mut out);
    }
    out
}

/// The tree as nested JSON for the template's recursive list.
fn unit_tree(units: &[OrgUnit], today: &str) -> Vec<Value> {
    let mut stack: Vec<(usize, Value)> = Vec::new();
    let mut roots = Vec::new();
    fn close(stack: &mut Vec<(usize, Value)>, roots: &mut Vec<Value>, down_to: usize) {
        while stack.len() > down_to {
            let Some((_, node)) = stack.pop() else { break };
            match stack.last_mut() {
                Some((_, parent)) => {
                    if let Some(c) = parent["children"].as_array_mut() {
                        c.push(node);
                    }
                }
                None => roots.push(node),
            }
        }
    }
    for (depth, u) in tree_order(units) {
        close(&mut stack, &mut roots, depth);
        let mut v = unit_view(u, today);
        v["children"] = json!([]);
        stack.push((depth, v));
    }
    close(&mut stack, &mut roots, 0);
    roots
}

/// Options for a unit select, in tree order and indented by depth.
pub(crate) fn unit_options(
    units: &[OrgUnit],
    today: &str,
    keep: impl Fn(&OrgUnit) -> bool,
) -> Vec<Value> {
    tree_order(units)
        .into_iter()
        .filter(|(_, u)| keep(u))
        .map(|(depth, u)| {
            json!({
                "id": u.id,
                "code": u.code,
                "label": format!("{}{}（{}）", "\u{3000}".repeat(depth.min(8)), u.name, u.code),
                "state": period_state(&u.valid_from, u.valid_to.as_deref(), today),
            })
        })
        .collect()
}

/// Decides whether a person's name may link to their page: only when the
/// viewer's ViewPeople scope covers the person's unit, so a link never
/// leads to a refusal.
pub(crate) struct PersonLinks {
    scope: Option<ActorScope>,
    people: HashMap<PersonId, bool>,
    units: HashMap<Option<OrgUnitId>, bool>,
}

impl PersonLinks {
    pub(crate) fn new(actor: &Actor) -> PersonLinks {
        PersonLinks {
            scope: actor.scope(Action::ViewPeople),
            people: HashMap::new(),
            units: HashMap::new(),
        }
    }

    pub(crate) async fn unit_in_scope(
        &mut self,
        conn: &mut Conn,
        unit: Option<OrgUnitId>,
    ) -> Result<bool, AppError> {
        if let Some(v) = self.units.get(&unit) {
            return Ok(*v);
        }
        let v = match (&self.scope, unit) {
            (None, _) => false,
            (Some(ActorScope::Ward), _) => true,
            (Some(_), None) => false,
            (Some(s), Some(u)) => service::in_scope(conn, s, u).await?,
        };
        self.units.insert(unit, v);
        Ok(v)
    }

    pub(crate) async fn person(&mut self, conn: &mut Conn, id: PersonId) -> Result<bool, AppError> {
        if let Some(v) = self.people.get(&id) {
            return Ok(*v);
        }
        let v = match &self.scope {
            None => false,
            Some(ActorScope::Ward) => true,
            Some(_) => match crate::people::store::get_person(conn, id).await? {
                Some(p) => self.unit_in_scope(conn, p.org_unit_id).await?,
                None => false,
            },
        };
        self.people.insert(id, v);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: i64, parent: Option<i64>) -> OrgUnit {
        OrgUnit {
            id: OrgUnitId(id),
            code: format!("u{id}"),
            name: format!("unit {id}"),
            name_en: String::new(),
            kind: UnitKind::Section,
            parent_id: parent.map(OrgUnitId),
            valid_from: "2020-04-01".into(),
            valid_to: None,
        }
    }

    fn order(units: &[OrgUnit]) -> Vec<(usize, i64)> {
        tree_order(units)
            .into_iter()
            .map(|(d, u)| (d, u.id.0))
            .collect()
    }

    #[test]
    fn tree_order_nests_and_survives_orphans_and_cycles() {
        let units = vec![
            unit(1, None),
            unit(3, Some(2)),
            unit(2, Some(1)),
            unit(4, Some(1)),
            unit(5, Some(99)),
        ];
        assert_eq!(order(&units), vec![(0, 1), (1, 2), (2, 3), (1, 4), (0, 5)]);
        let cycle = vec![unit(1, Some(2)), unit(2, Some(1)), unit(3, Some(3))];
        let got = order(&cycle);
        assert_eq!(got.len(), 3, "every unit appears once: {got:?}");
    }

    #[test]
    fn unit_tree_matches_tree_order() {
        let units = vec![
            unit(1, None),
            unit(2, Some(1)),
            unit(3, Some(2)),
            unit(4, Some(1)),
        ];
        let tree = unit_tree(&units, "2026-04-01");
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0]["children"].as_array().map(Vec::len), Some(2));
        assert_eq!(tree[0]["children"][0]["children"][0]["id"], 3);
    }

    #[test]
    fn ids_from_forms() {
        for (input, expected) in [
            ("12", Some(12)),
            (" 7 ", Some(7)),
            ("0", None),
            ("-1", None),
            ("1e3", None),
            ("", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_id(input), expected, "{input:?}");
        }
    }

    #[test]
    fn periods() {
        for (from, to, expected) in [
            ("2026-04-01", None, "current"),
            ("2026-04-02", None, "future"),
            ("2020-01-01", Some("2026-03-31"), "ended"),
            ("2020-01-01", Some("2026-04-01"), "current"),
        ] {
            assert_eq!(
                period_state(from, to, "2026-04-01"),
                expected,
                "{from} {to:?}"
            );
        }
    }

    #[test]
    fn form_errors_group_by_field() {
        let errors = vec![
            FieldError {
                field: "code".into(),
                code: "x".into(),
                clause: None,
                message: "a".into(),
            },
            FieldError {
                field: "code".into(),
                code: "y".into(),
                clause: None,
                message: "b".into(),
            },
            FieldError {
                field: "elsewhere".into(),
                code: "z".into(),
                clause: None,
                message: "c".into(),
            },
        ];
        let v = form_errors(&errors, &["code", "name"], "new-");
        assert_eq!(v["by"]["code"], json!(["a", "b"]));
        assert!(v["by"].get("elsewhere").is_none());
        assert_eq!(v["summary"][0]["anchor"], "new-code");
        assert!(v["summary"][2]["anchor"].is_null());
        assert_eq!(v["any"], true);
    }
}
