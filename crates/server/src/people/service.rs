//! Personnel events (K17.3: registration follows 採用, 異動, 派遣 and 退職
//! promptly). An event dated today or earlier applies at once; a later one
//! is scheduled and applied by the background task on its date. A transfer
//! ends what was tied to the old post; a retirement disables the account
//! from its effective date and ends every session.

use super::store::{self, NewEvent, NewPerson};
use super::Person;
use crate::app::AppState;
use crate::auth::session;
use crate::clock::date_str;
use crate::db::Conn;
use crate::identity;
use crate::ids::{OrgUnitId, PersonId};
use crate::org;
use crate::records::{self, Record, Who};
use crate::web::error::{AppError, FieldError};
use mamori_personnel_csv::{EventKind, PersonnelEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Where an event came from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Ui,
    Api,
    Csv,
}

impl Source {
    fn code(self) -> &'static str {
        match self {
            Source::Ui => "ui",
            Source::Api => "api",
            Source::Csv => "csv",
        }
    }
}

/// What happened to a submitted event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventOutcome {
    pub event_id: i64,
    pub person_id: PersonId,
    /// applied or scheduled.
    pub status: String,
}

/// Checks an event against the current data without writing anything;
/// returns the problems, each naming its field.
pub async fn validate(
    conn: &mut Conn,
    ev: &PersonnelEvent,
) -> Result<Vec<FieldError>, sqlx::Error> {
    let mut errors = Vec::new();
    let existing = store::person_by_number(conn, ev.employee_number.as_str()).await?;
    match ev.kind {
        EventKind::Hire => {
            if existing.is_some() {
                errors.push(FieldError::new(
                    "employee_number",
                    "people.already_exists",
                    &[],
                ));
            }
            for (field, present) in [
                ("name_kanji", ev.name_kanji.is_some()),
                ("name_kana", ev.name_kana.is_some()),
                ("birth_date", ev.birth_date.is_some()),
                ("employment", ev.employment.is_some()),
                ("org_unit_code", ev.org_unit_code.is_some()),
            ] {
                if !present {
                    errors.push(FieldError::new(field, "field.required", &[]));
                }
            }
        }
        _ => match &existing {
            None => errors.push(FieldError::new(
                "employee_number",
                "people.no_such_person",
                &[],
            )),
            Some(p) if p.status == "retired" => errors.push(FieldError::new(
                "employee_number",
                "people.already_retired",
                &[],
            )),
            Some(_) => {}
        },
    }
    if matches!(ev.kind, EventKind::Transfer | EventKind::Dispatch) && ev.org_unit_code.is_none() {
        errors.push(FieldError::new("org_unit_code", "field.required", &[]));
    }
    if let Some(code) = &ev.org_unit_code {
        if org::store::unit_by_code(conn, code).await?.is_none() {
            errors.push(FieldError::new(
                "org_unit_code",
                "org.no_such_unit_code",
                &[("value", code.clone())],
            ));
        }
    }
    Ok(errors)
}

/// Which units an event touches (for the actor's scope): the person's
/// current unit and the destination.
pub async fn units_touched(
    conn: &mut Conn,
    ev: &PersonnelEvent,
) -> Result<Vec<Option<OrgUnitId>>, sqlx::Error> {
    let mut units = Vec::new();
    if let Some(p) = store::person_by_number(conn, ev.employee_number.as_str()).await? {
        units.push(p.org_unit_id);
    }
    if let Some(code) = &ev.org_unit_code {
        units.push(org::store::unit_by_code(conn, code).await?.map(|u| u.id));
    }
    Ok(units)
}

/// Submits one validated event inside the caller's transaction.
pub async fn submit(
    conn: &mut Conn,
    state: &AppState,
    who: &Who,
    created_by: Option<PersonId>,
    source: Source,
    ev: &PersonnelEvent,
) -> Result<EventOutcome, AppError> {
    let errors = validate(conn, ev).await?;
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let today = state.clock().today();
    let due = ev.effective <= today;
    let payload = serde_json::to_string(ev).map_err(|e| AppError::Internal(e.to_string()))?;
    let now = state.clock().unix();
    let mut person_id = None;
    if ev.kind == EventKind::Hire {
        // The person exists from submission so later events can refer to
        // them; the account opens on the effective date.
        let unit = match &ev.org_unit_code {
            Some(code) => org::store::unit_by_code(conn, code).await?.map(|u| u.id),
            None => None,
        };
        let birth = ev.birth_date.map(date_str);
        let effective = date_str(ev.effective);
        let new = NewPerson {
            employee_number: ev.employee_number.as_str(),
            name_kanji: ev.name_kanji.as_deref().unwrap_or(""),
            name_kana: ev.name_kana.as_deref().unwrap_or(""),
            name_romaji: ev.name_romaji.as_deref().unwrap_or(""),
            birth_date: birth.as_deref(),
            employment: ev.employment.map(|e| e.code()).unwrap_or("regular"),
            org_unit_id: unit,
            title: ev.title.as_deref().unwrap_or(""),
            status: if due { "active" } else { "pending" },
            hired_on: Some(&effective),
        };
        let pid = store::insert_person(conn, &new, now).await?;
        identity::store::insert_personal_account(conn, pid, ev.employee_number.as_str(), !due, now)
            .await?;
        person_id = Some(pid);
    }
    let status = if due { "applied" } else { "scheduled" };
    let event_id = store::insert_event(
        conn,
        &NewEvent {
            employee_number: ev.employee_number.as_str(),
            kind: ev.kind.code(),
            effective_date: &date_str(ev.effective),
            payload,
            status,
            source: source.code(),
            created_by,
        },
        now,
    )
    .await?;
    let pid = match person_id {
        Some(p) => p,
        None => store::person_by_number(conn, ev.employee_number.as_str())
            .await?
            .map(|p| p.id)
            .ok_or(AppError::NotFound("person"))?,
    };
    let rec =
        Record::new(who.clone(), "personnel.submit", pid.record_ref(), "K17.3").detail(json!({
            "event_id": event_id, "kind": ev.kind.code(), "effective_date": date_str(ev.effective),
            "org_unit_code": ev.org_unit_code, "status": status, "source": source.code()
        }));
    records::append(conn, state.clock().unix_micros(), &rec).await?;
    if due && ev.kind != EventKind::Hire {
        apply(conn, state, who, pid, ev).await?;
    } else if ev.kind == EventKind::Retire {
        // The leaving date is known now: login is refused from that date
        // even if the scheduled task has not yet run (K17.3).
        store::set_left_on(conn, pid, &date_str(ev.effective), now).await?;
    }
    Ok(EventOutcome {
        event_id,
        person_id: pid,
        status: status.into(),
    })
}

/// Applies an event whose date has come.
async fn apply(
    conn: &mut Conn,
    state: &AppState,
    who: &Who,
    pid: PersonId,
    ev: &PersonnelEvent,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let person = store::get_person(conn, pid)
        .await?
        .ok_or(AppError::NotFound("person"))?;
    let effective = date_str(ev.effective);
    let last_day = date_str(ev.effective.previous_day().unwrap_or(ev.effective));
    let dest = match &ev.org_unit_code {
        Some(code) => org::store::unit_by_code(conn, code).await?.map(|u| u.id),
        None => None,
    };
    match ev.kind {
        EventKind::Hire => {
            store::set_status(conn, pid, "active", None, now).await?;
            identity::store::set_disabled(conn, pid, false, None).await?;
        }
        EventKind::Transfer | EventKind::Dispatch => {
            end_post(conn, state, who, &person, &last_day).await?;
            let status = if ev.kind == EventKind::Dispatch {
                "dispatched"
            } else {
                "active"
            };
            store::set_post(conn, pid, dest, ev.title.as_deref(), status, now).await?;
        }
        EventKind::Retire => {
            end_post(conn, state, who, &person, &last_day).await?;
            store::set_status(conn, pid, "retired", Some(&effective), now).await?;
            identity::store::set_disabled(conn, pid, true, Some("retired")).await?;
            if let Some(acc) = &person.account {
                session::end_all_for_account(conn, now, acc.id, "retired").await?;
            }
        }
    }
    let rec = Record::new(who.clone(), "personnel.apply", pid.record_ref(), "K17.3").detail(json!({
        "kind": ev.kind.code(), "effective_date": effective, "from_unit": person.org_unit_id, "to_unit": dest
    }));
    records::append(conn, state.clock().unix_micros(), &rec).await?;
    Ok(())
}

/// Ends what was tied to the person's old post (K17.3): their role
/// assignments, their access grants and their appointments as 運用管理者.
async fn end_post(
    conn: &mut Conn,
    state: &AppState,
    who: &Who,
    person: &Person,
    last_day: &str,
) -> Result<(), AppError> {
    for a in org::store::open_assignments_of(conn, person.id, last_day).await? {
        // An assignment that starts on or after the move never takes effect:
        // its end falls before its start, an empty period.
        let end = last_day.to_string();
        org::store::end_assignment(conn, a.id, &end).await?;
        let rec = Record::new(who.clone(), "role.end", person.id.record_ref(), "K17.3")
            .detail(json!({ "assignment_id": a.id, "role": a.role, "valid_to": end, "reason": "personnel_event" }));
        records::append(conn, state.clock().unix_micros(), &rec).await?;
    }
    crate::assets::service::end_post(conn, state, who, person.id, "personnel_event").await?;
    Ok(())
}

/// Applies every scheduled event that is due; returns how many applied.
/// Each event is its own transaction; one that can no longer apply is
/// marked failed with the reason, and the others go on.
pub async fn apply_due(state: &AppState) -> Result<usize, AppError> {
    let today = date_str(state.clock().today());
    let due = {
        let mut conn = state.db().pool().acquire().await?;
        store::due_events(&mut conn, &today).await?
    };
    let mut applied = 0;
    for (id, payload) in due {
        let mut tx = state.db().begin().await?;
        let result = match serde_json::from_str::<PersonnelEvent>(&payload) {
            Ok(ev) => match store::person_by_number(&mut tx, ev.employee_number.as_str()).await? {
                Some(p) => apply(&mut tx, state, &Who::Scheduler, p.id, &ev).await,
                None => Err(AppError::NotFound("person")),
            },
            Err(e) => Err(AppError::Internal(e.to_string())),
        };
        let now = state.clock().unix();
        match result {
            Ok(()) => {
                store::mark_event(&mut tx, id, "applied", None, now).await?;
                tx.commit().await?;
                applied += 1;
            }
            Err(e) => {
                drop(tx);
                let mut tx = state.db().begin().await?;
                store::mark_event(&mut tx, id, "failed", Some(&e.to_string()), now).await?;
                let rec = Record::new(
                    Who::Scheduler,
                    "personnel.apply",
                    format!("personnel_event:{id}"),
                    "K17.3",
                )
                .outcome(records::Outcome::Failure)
                .detail(json!({ "error": e.to_string() }));
                records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
                tx.commit().await?;
            }
        }
    }
    Ok(applied)
}

/// One line's problem in an import.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportError {
    pub line: usize,
    pub column: Option<String>,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// utf-8 or shift_jis.
    pub encoding: String,
    pub rows: usize,
    /// Whether anything was written.
    pub applied: bool,
    pub events: Vec<EventOutcome>,
    pub errors: Vec<ImportError>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
pub struct ImportOptions {
    /// Apply the valid rows even when others have errors (default: all or nothing).
    #[serde(default)]
    pub apply_valid: bool,
}

fn file_error(e: &mamori_personnel_csv::FileError, lang: crate::web::i18n::Lang) -> ImportError {
    let catalog = match lang {
        crate::web::i18n::Lang::Ja => mamori_personnel_csv::MESSAGES_JA,
        crate::web::i18n::Lang::En => mamori_personnel_csv::MESSAGES_EN,
    };
    ImportError {
        line: e.line().unwrap_or(0),
        column: None,
        code: e.code().to_string(),
        message: e.render(catalog),
    }
}

/// Imports the HR system's personnel CSV (`mamori import personnel`, the
/// API and the upload page). All or nothing unless `apply_valid`.
pub async fn import_csv(
    state: &AppState,
    who: &Who,
    created_by: Option<PersonId>,
    scope: Option<&crate::auth::ActorScope>,
    bytes: &[u8],
    opts: ImportOptions,
) -> Result<ImportReport, AppError> {
    let lang = crate::web::i18n::current();
    let catalog = match lang {
        crate::web::i18n::Lang::Ja => mamori_personnel_csv::MESSAGES_JA,
        crate::web::i18n::Lang::En => mamori_personnel_csv::MESSAGES_EN,
    };
    let parsed = match mamori_personnel_csv::parse(bytes) {
        Ok(p) => p,
        Err(e) => {
            return Ok(ImportReport {
                encoding: String::new(),
                rows: 0,
                applied: false,
                events: vec![],
                errors: vec![file_error(&e, lang)],
            })
        }
    };
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    let mut tx = state.db().begin().await?;
    for row in &parsed.rows {
        match &row.result {
            Err(row_errors) => errors.extend(row_errors.iter().map(|e| ImportError {
                line: e.line,
                column: e.column.map(|c| c.ja().to_string()),
                code: e.code().to_string(),
                message: e.render(catalog),
            })),
            Ok(ev) => {
                let mut problems = validate(&mut tx, ev).await?;
                if let Some(scope) = scope {
                    for unit in units_touched(&mut tx, ev).await? {
                        if org::service::require_in_scope(&mut tx, scope, unit)
                            .await
                            .is_err()
                        {
                            problems.push(FieldError::new(
                                "org_unit_code",
                                "people.out_of_scope",
                                &[],
                            ));
                        }
                    }
                }
                if problems.is_empty() {
                    valid.push((row.line, ev));
                } else {
                    errors.extend(problems.into_iter().map(|p| ImportError {
                        line: row.line,
                        column: Some(p.field),
                        code: p.code,
                        message: p.message,
                    }));
                }
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    let encoding = match parsed.encoding {
        mamori_personnel_csv::Encoding::Utf8 => "utf-8",
        mamori_personnel_csv::Encoding::ShiftJis => "shift_jis",
    };
    let rows = parsed.rows.len();
    if !errors.is_empty() && !opts.apply_valid {
        return Ok(ImportReport {
            encoding: encoding.into(),
            rows,
            applied: false,
            events: vec![],
            errors,
        });
    }
    let mut events = Vec::new();
    for (_, ev) in &valid {
        events.push(submit(&mut tx, state, who, created_by, Source::Csv, ev).await?);
    }
    let rec = Record::new(who.clone(), "personnel.import", "personnel_csv", "K17.3")
        .detail(json!({ "rows": rows, "applied": events.len(), "errors": errors.len(), "encoding": encoding }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(ImportReport {
        encoding: encoding.into(),
        rows,
        applied: !events.is_empty(),
        events,
        errors,
    })
}
