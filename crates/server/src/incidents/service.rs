//! Reports and the reporting chain (K10.1–3, K33.1.6): validation, the
//! timed steps, acting on a step, escalation of overdue steps, who may see
//! a report, and notifications (in the app, and by e-mail through the
//! outbox). Every change is written with its record and its timeline entry
//! in one transaction.

use super::store::{self, Filter, NewIncident, NewStep};
use super::{failures, response, ChecklistItem, IncidentSummary, IncidentView, Kind, LOST_ITEMS};
use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use crate::org::UnitKind;
use crate::records::{self, Record, Who};
use crate::web::error::{AppError, FieldError};
use crate::web::i18n::{self, Lang};
use crate::web::json::{check_text, done};
use mamori_policy::permission::Action;
use mamori_policy::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 10_000;
pub const MAX_COMMENT: usize = 4_000;
/// A noticed-at time this far ahead of the clock is still accepted (a
/// terminal's clock a little fast), anything later is "in the future".
const FUTURE_SLACK_SECS: i64 = 300;

/// `POST /api/v1/incidents` and the report form.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// `accident`, `failure`, `intrusion`, `virus`, `loss`, `other`.
    #[serde(default)]
    pub kind: String,
    /// For `loss`: `card`, `media` or `device`.
    #[serde(default)]
    pub lost_item: String,
    #[serde(default)]
    pub title: String,
    /// What happened.
    #[serde(default)]
    pub description: String,
    /// When it was noticed: RFC 3339, or `YYYY-MM-DD HH:MM` / `YYYY-MM-DDTHH:MM`
    /// in Japan time, or a date (和暦 too). Not in the future.
    #[serde(default)]
    pub noticed_at: String,
    /// A registered system's code (e.g. `library`), if a system is concerned.
    #[serde(default)]
    pub system_code: String,
}

/// Parses a time typed by a person: RFC 3339, a JST `YYYY-MM-DD HH:MM[:SS]`
/// (or with `T`), or a date (its midnight in JST).
pub fn parse_time(value: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::macros::format_description;
    let v = value.trim();
    if let Ok(t) = time::OffsetDateTime::parse(v, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let v2 = v.replace('T', " ");
    let formats = [
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ];
    for f in formats {
        if let Ok(t) = time::PrimitiveDateTime::parse(&v2, f) {
            return Some(t.assume_offset(crate::clock::JST).unix_timestamp());
        }
    }
    mamori_policy::wareki::parse_date(v).map(|d| {
        d.midnight()
            .assume_offset(crate::clock::JST)
            .unix_timestamp()
    })
}

/// Checks a time field: required or not, parsable, not in the future.
pub fn check_time(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    required: bool,
    now: i64,
) -> Option<i64> {
    if value.trim().is_empty() {
        if required {
            errors.push(FieldError::new(field, "field.required", &[]));
        }
        return None;
    }
    match parse_time(value) {
        None => {
            errors.push(FieldError::new(
                field,
                "incident.bad_time",
                &[("value", value.chars().take(40).collect())],
            ));
            None
        }
        Some(t) if t > now + FUTURE_SLACK_SECS => {
            errors.push(FieldError::new(field, "incident.future", &[]));
            None
        }
        Some(t) => Some(t),
    }
}

/// A system code as typed: empty, or a registered system.
pub async fn check_system(
    conn: &mut Conn,
    errors: &mut Vec<FieldError>,
    field: &str,
    code: &str,
    required: bool,
) -> Result<(), sqlx::Error> {
    let code = code.trim();
    if code.is_empty() {
        if required {
            errors.push(FieldError::new(field, "field.required", &[]));
        }
        return Ok(());
    }
    let known = crate::org::store::list_systems(conn)
        .await?
        .iter()
        .any(|s| s.code == code);
    if !known {
        errors.push(FieldError::new(
            field,
            "incident.unknown_system",
            &[("value", code.chars().take(40).collect())],
        ));
    }
    Ok(())
}

/// Validates a report; returns the noticed-at time.
pub async fn validate_report(
    conn: &mut Conn,
    input: &ReportInput,
    now: i64,
) -> Result<i64, AppError> {
    let mut errors = Vec::new();
    let kind = Kind::parse(input.kind.trim());
    if input.kind.trim().is_empty() {
        errors.push(FieldError::new("kind", "field.required", &[]));
    } else if kind.is_none() {
        errors.push(FieldError::new("kind", "incident.bad_kind", &[]));
    }
    if kind == Some(Kind::Loss) {
        let item = input.lost_item.trim();
        if item.is_empty() {
            errors.push(FieldError::new("lost_item", "field.required", &[]));
        } else if !LOST_ITEMS.contains(&item) {
            errors.push(FieldError::new("lost_item", "incident.bad_lost_item", &[]));
        }
    }
    check_text(&mut errors, "title", input.title.trim(), MAX_TITLE, true);
    // A title is one line (it also heads notifications and mail).
    if input.title.contains(['\n', '\r', '\t']) {
        errors.push(FieldError::new("title", "field.control_chars", &[]));
    }
    check_text(
        &mut errors,
        "description",
        &input.description,
        MAX_DESCRIPTION,
        true,
    );
    let noticed = check_time(&mut errors, "noticed_at", &input.noticed_at, true, now);
    check_system(conn, &mut errors, "system_code", &input.system_code, false).await?;
    done(errors)?;
    noticed.ok_or_else(|| AppError::invalid("noticed_at", "field.required", &[]))
}

/// Whether the unit is, or lies under, a 指定管理者 or 関係団体 (K33.1.6).
async fn outside_org(conn: &mut Conn, unit: Option<OrgUnitId>) -> Result<bool, sqlx::Error> {
    let Some(u) = unit else { return Ok(false) };
    for a in crate::org::store::ancestors(conn, u).await? {
        if let Some(unit) = crate::org::store::get_unit(conn, a).await? {
            if matches!(
                unit.kind,
                UnitKind::DesignatedManager | UnitKind::RelatedOrganisation
            ) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Appends a timeline entry and its record (same transaction).
#[allow(clippy::too_many_arguments)]
pub async fn entry(
    conn: &mut Conn,
    state: &AppState,
    who: &Who,
    ip: &str,
    incident: i64,
    kind: &'static str,
    action: &'static str,
    clause: &'static str,
    detail: serde_json::Value,
) -> Result<i64, AppError> {
    let rec = Record::new(who.clone(), action, format!("incident:{incident}"), clause)
        .from_ip(ip)
        .detail(detail.clone());
    let record_id = records::append(conn, state.clock().unix_micros(), &rec).await?;
    let id = store::insert_entry(
        conn,
        incident,
        kind,
        &who.record_ref(),
        state.clock().unix(),
        &detail,
        record_id,
    )
    .await?;
    Ok(id)
}

/// Tells a person about an incident: in the app, and by e-mail when an
/// address is kept and mail is configured (through the outbox, so the
/// mail leaves after this transaction commits).
pub async fn notify(
    conn: &mut Conn,
    state: &AppState,
    person: PersonId,
    incident: i64,
    title: &str,
    key: &str,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let params = json!({ "id": incident, "title": title });
    store::notify(conn, person, incident, key, &params, now).await?;
    if let Some(addr) = crate::mail::address_of(conn, person.0).await? {
        let p = [("id", incident.to_string()), ("title", title.to_string())];
        // Mail is in Japanese, the ward's language, whatever the UI language
        // of the person who caused it.
        let subject = i18n::t(Lang::Ja, "incident.mail.subject", &p);
        let mut body = i18n::t(Lang::Ja, key, &p);
        body.push_str("\n\n");
        body.push_str(&i18n::t(Lang::Ja, "incident.mail.body", &p));
        crate::mail::enqueue(conn, &state.config().mail, &addr, &subject, &body, now).await?;
    }
    Ok(())
}

async fn deadline_minutes(conn: &mut Conn, seq: i64) -> Result<i64, sqlx::Error> {
    let key = match seq {
        1 => "incident.deadline_minutes.manager",
        2 => "incident.deadline_minutes.director",
        _ => "incident.deadline_minutes.cio",
    };
    crate::settings::get(conn, key).await
}

async fn ward_holder(
    conn: &mut Conn,
    role: Role,
    date: &str,
) -> Result<Option<PersonId>, sqlx::Error> {
    Ok(crate::org::store::holders(conn, role.code(), None, date)
        .await?
        .into_iter()
        .next()
        .map(|h| h.0))
}

/// Opens step `seq` (and further steps when nobody can hold it, see the
/// module docs of `incidents`). `why` is the notification key for its holder.
pub async fn open_step(
    conn: &mut Conn,
    state: &AppState,
    incident: &IncidentSummary,
    seq: i64,
    why: &str,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let today = crate::clock::date_str(state.clock().today());
    let mut seq = seq;
    while seq <= 3 {
        let (person, unit, substitute) = match seq {
            1 => {
                let m = match incident.reporter_unit_id {
                    Some(u) => crate::org::service::unit_security_manager(conn, u, &today).await?,
                    None => None,
                };
                match m {
                    Some(step) => (step.person_id, step.org_unit_id, ""),
                    None => (None, incident.reporter_unit_id, "no_holder"),
                }
            }
            2 => match ward_holder(conn, Role::SecurityDirector, &today).await? {
                Some(p) => (Some(p), None, ""),
                None => match ward_holder(conn, Role::SecurityChiefManager, &today).await? {
                    Some(p) => (Some(p), None, "acting"),
                    None => (None, None, "no_holder"),
                },
            },
            _ => match ward_holder(conn, Role::Cio, &today).await? {
                Some(p) => (Some(p), None, ""),
                None => (None, None, "no_holder"),
            },
        };
        let due = now + deadline_minutes(conn, seq).await? * 60;
        let step_id = store::insert_step(
            conn,
            &NewStep {
                incident_id: incident.id,
                seq,
                role: super::STEP_ROLES[(seq - 1) as usize],
                person_id: person,
                org_unit_id: unit,
                substitute,
                opened_at: now,
                due_at: due,
            },
        )
        .await?;
        let status = match seq {
            1 => "at_manager",
            2 => "at_director",
            _ => "at_cio",
        };
        store::set_status(conn, incident.id, status, now).await?;
        match person {
            Some(p) => {
                notify(conn, state, p, incident.id, &incident.title, why).await?;
                return Ok(());
            }
            // Nobody to hold a manager or director step: it is passed on at
            // once, so the report never waits on an empty chair. The CIO
            // step stays open, flagged.
            None if seq < 3 => {
                store::complete_step(conn, step_id, now).await?;
                entry(
                    conn,
                    state,
                    &Who::Scheduler,
                    "",
                    incident.id,
                    "skipped",
                    "incident.step_skipped",
                    "K10.2",
                    json!({ "step": seq, "reason": "no_holder" }),
                )
                .await?;
                seq += 1;
            }
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Files a report and starts the chain (K10.1). Attachments already stored
/// (see `attachments`) are linked in the same transaction.
pub async fn report(
    state: &AppState,
    actor: &Actor,
    input: &ReportInput,
    files: &[super::attachments::Stored],
) -> Result<i64, AppError> {
    let Some(person) = actor.person_id else {
        return Err(AppError::invalid("form", "incident.no_person", &[]));
    };
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let noticed_at = validate_report(&mut tx, input, now).await?;
    let unit = crate::people::store::get_person(&mut tx, person)
        .await?
        .and_then(|p| p.org_unit_id);
    let outside = outside_org(&mut tx, unit).await?;
    let kind = input.kind.trim();
    let lost = if kind == "loss" {
        input.lost_item.trim()
    } else {
        ""
    };
    let id = store::insert(
        &mut tx,
        &NewIncident {
            kind,
            lost_item: lost,
            title: input.title.trim(),
            description: &input.description,
            noticed_at,
            system_code: input.system_code.trim(),
            reporter_id: person,
            reporter_unit_id: unit,
            outside_org: outside,
        },
        now,
    )
    .await?;
    entry(
        &mut tx,
        state,
        &actor.who(),
        actor.ip(),
        id,
        "reported",
        "incident.report",
        if outside { "K33.1.6" } else { "K10.1" },
        json!({ "kind": kind, "lost_item": lost, "title": input.title.trim(),
                "system_code": input.system_code.trim(), "noticed_at": noticed_at,
                "outside_org": outside }),
    )
    .await?;
    for f in files {
        super::attachments::link(&mut tx, state, actor, id, f).await?;
    }
    let summary = store::get(&mut tx, id, now)
        .await?
        .ok_or(AppError::NotFound("incident"))?
        .0;
    open_step(&mut tx, state, &summary, 1, "incident.notice.new_report").await?;
    if outside {
        // K33.1.6: a 指定管理者 reports to the ward 「速やかに」; the ward's
        // security manager hears at once, not only when the organisation's
        // own manager passes it on.
        let today = crate::clock::date_str(state.clock().today());
        if let Some(chief) = ward_holder(&mut tx, Role::SecurityChiefManager, &today).await? {
            notify(
                &mut tx,
                state,
                chief,
                id,
                &summary.title,
                "incident.notice.outside_report",
            )
            .await?;
        }
    }
    store::delete_draft(&mut tx, person).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

/// Whether the actor may open this report: its reporter, a holder of one
/// of its steps, anyone notified about it, or a viewer whose scope covers
/// the reporter's unit.
pub async fn can_view(
    conn: &mut Conn,
    actor: &Actor,
    inc: &IncidentSummary,
) -> Result<bool, AppError> {
    if let Some(p) = actor.person_id {
        if p == inc.reporter_id {
            return Ok(true);
        }
        let now = 0;
        if store::steps(conn, inc.id, now)
            .await?
            .iter()
            .any(|s| s.person_id == Some(p))
        {
            return Ok(true);
        }
        if store::was_notified(conn, p, inc.id).await? {
            return Ok(true);
        }
    }
    scope_covers(conn, actor.scope(Action::ViewIncidents), inc).await
}

async fn scope_covers(
    conn: &mut Conn,
    scope: Option<ActorScope>,
    inc: &IncidentSummary,
) -> Result<bool, AppError> {
    Ok(match (scope, inc.reporter_unit_id) {
        (Some(ActorScope::Ward), _) => true,
        (Some(s), Some(u)) => crate::org::service::in_scope(conn, &s, u).await?,
        _ => false,
    })
}

/// Whether the actor may act on the report's response (K27 entries,
/// promotion, failure record): a holder of one of its steps, or
/// `HandleIncidents` over the reporter's unit.
pub async fn can_handle(
    conn: &mut Conn,
    actor: &Actor,
    inc: &IncidentSummary,
) -> Result<bool, AppError> {
    if let Some(p) = actor.person_id {
        if store::steps(conn, inc.id, 0)
            .await?
            .iter()
            .any(|s| s.person_id == Some(p))
        {
            return Ok(true);
        }
    }
    scope_covers(conn, actor.scope(Action::HandleIncidents), inc).await
}

/// Loads a report the actor may see; "not found" otherwise (a report's
/// existence is not revealed).
pub async fn load_visible(
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    now: i64,
) -> Result<(IncidentSummary, String), AppError> {
    let (s, d) = store::get(conn, id, now)
        .await?
        .ok_or(AppError::NotFound("incident"))?;
    if !can_view(conn, actor, &s).await? {
        return Err(AppError::NotFound("incident"));
    }
    Ok((s, d))
}

/// A report with its chain, timeline, attachments and checklist.
pub async fn view(state: &AppState, actor: &Actor, id: i64) -> Result<IncidentView, AppError> {
    let now = state.clock().unix();
    let mut conn = state.db().pool().acquire().await?;
    let (summary, description) = load_visible(&mut conn, actor, id, now).await?;
    let steps = store::steps(&mut conn, id, now).await?;
    let timeline = store::entries(&mut conn, id).await?;
    let attachments = store::attachments(&mut conn, id).await?;
    let checklist: Vec<ChecklistItem> = if summary.security {
        response::checklist(&store::entry_kinds(&mut conn, id).await?)
    } else {
        vec![]
    };
    let failure_record = failures::store::get_record(&mut conn, id).await?;
    let procedure = if summary.system_code.is_empty() {
        None
    } else {
        failures::store::current_procedure(&mut conn, &summary.system_code).await?
    };
    Ok(IncidentView {
        summary,
        description,
        steps,
        timeline,
        attachments,
        checklist,
        failure_record,
        procedure,
    })
}

/// Which reports a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListScope {
    /// My own reports, and those whose steps or notices reached me.
    Mine,
    /// Everything my `ViewIncidents` scope covers (my department's for a
    /// manager, the ward's for the 統括者 and the CIO).
    All,
}

/// The filter for a list in the actor's scope.
pub async fn filter_for(
    conn: &mut Conn,
    actor: &Actor,
    which: ListScope,
) -> Result<Filter, AppError> {
    let mut f = Filter::default();
    match which {
        ListScope::Mine => {
            f.reporter = Some(actor.person_id.unwrap_or(PersonId(0)));
            f.involving = actor.person_id;
        }
        ListScope::All => match actor.scope(Action::ViewIncidents) {
            Some(ActorScope::Ward) => {}
            Some(s) => {
                f.units = Some(
                    crate::people::api::scope_units(conn, &s)
                        .await?
                        .unwrap_or_default(),
                )
            }
            None => return Err(AppError::Forbidden(Action::ViewIncidents.code())),
        },
    }
    Ok(f)
}

// ---------------------------------------------------------------------------
// Acting on a step

/// What the holder of a step does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// I have received it (any step; completes the CIO's).
    Acknowledge,
    /// Manager → セキュリティ統括者 (K10.2).
    Forward,
    /// 統括者 → 最高情報統括責任者 (K10.3).
    Report,
    /// 統括者 instructs the manager on the measures needed (K10.3).
    Instruct,
}

impl StepAction {
    pub fn parse(s: &str) -> Option<StepAction> {
        match s {
            "acknowledge" => Some(StepAction::Acknowledge),
            "forward" => Some(StepAction::Forward),
            "report" => Some(StepAction::Report),
            "instruct" => Some(StepAction::Instruct),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    pub action: StepAction,
    /// A comment (required for `instruct`).
    #[serde(default)]
    pub comment: String,
}

/// The holder of step `step_id` acts on it. Anyone else is told the step
/// is not theirs (422 naming `step`); a finished step is a 409.
pub async fn act_on_step(
    state: &AppState,
    actor: &Actor,
    incident_id: i64,
    step_id: i64,
    input: &StepInput,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    store::lock(&mut tx, incident_id).await?;
    let (inc, _) = load_visible(&mut tx, actor, incident_id, now).await?;
    let steps = store::steps(&mut tx, incident_id, now).await?;
    let step = steps
        .iter()
        .find(|s| s.id == step_id)
        .ok_or(AppError::NotFound("incident step"))?
        .clone();
    if actor.person_id.is_none() || step.person_id != actor.person_id {
        return Err(AppError::Invalid(vec![FieldError::new(
            "step",
            "incident.not_your_step",
            &[],
        )
        .with_clause("K10")]));
    }
    let mut errors = Vec::new();
    check_text(
        &mut errors,
        "comment",
        &input.comment,
        MAX_COMMENT,
        input.action == StepAction::Instruct,
    );
    let fits = matches!(
        (input.action, step.seq),
        (StepAction::Acknowledge, _)
            | (StepAction::Forward, 1)
            | (StepAction::Report, 2)
            | (StepAction::Instruct, 2)
    );
    if !fits {
        errors.push(FieldError::new(
            "action",
            "incident.action_not_for_step",
            &[],
        ));
    }
    done(errors)?;
    if step.completed_at.is_some() && input.action != StepAction::Instruct {
        return Err(AppError::Conflict("incident.step_done"));
    }
    let who = actor.who();
    let comment = input.comment.trim();
    match input.action {
        StepAction::Acknowledge => {
            if step.acknowledged_at.is_some() {
                return Err(AppError::Conflict("incident.already_acknowledged"));
            }
            if step.seq == 3 {
                store::complete_step(&mut tx, step.id, now).await?;
                store::set_status(&mut tx, incident_id, "chain_done", now).await?;
            } else {
                store::acknowledge_step(&mut tx, step.id, now).await?;
            }
            entry(
                &mut tx,
                state,
                &who,
                actor.ip(),
                incident_id,
                "acknowledged",
                "incident.acknowledge",
                clause_of(step.seq),
                json!({ "step": step.seq, "comment": comment }),
            )
            .await?;
            if step.seq == 3 {
                // The chain is done: the reporter hears so.
                notify(
                    &mut tx,
                    state,
                    inc.reporter_id,
                    incident_id,
                    &inc.title,
                    "incident.notice.chain_done",
                )
                .await?;
            }
        }
        StepAction::Forward | StepAction::Report => {
            store::complete_step(&mut tx, step.id, now).await?;
            let (kind, action) = if input.action == StepAction::Forward {
                ("forwarded", "incident.forward")
            } else {
                ("reported_to_cio", "incident.report_to_cio")
            };
            entry(
                &mut tx,
                state,
                &who,
                actor.ip(),
                incident_id,
                kind,
                action,
                clause_of(step.seq),
                json!({ "step": step.seq, "comment": comment }),
            )
            .await?;
            let next = step.seq + 1;
            match steps.iter().find(|s| s.seq == next) {
                // Already opened by an escalation: its holder has it.
                Some(_) => {
                    store::set_status(
                        &mut tx,
                        incident_id,
                        if next == 2 { "at_director" } else { "at_cio" },
                        now,
                    )
                    .await?;
                }
                None => {
                    let key = if next == 2 {
                        "incident.notice.forwarded"
                    } else {
                        "incident.notice.reported"
                    };
                    open_step(&mut tx, state, &inc, next, key).await?;
                }
            }
        }
        StepAction::Instruct => {
            entry(
                &mut tx,
                state,
                &who,
                actor.ip(),
                incident_id,
                "instructed",
                "incident.instruct",
                "K10.3",
                json!({ "comment": comment }),
            )
            .await?;
            let manager = match steps.iter().find(|s| s.seq == 1).and_then(|s| s.person_id) {
                Some(p) => Some(p),
                None => match inc.reporter_unit_id {
                    Some(u) => crate::org::service::unit_security_manager(
                        &mut tx,
                        u,
                        &crate::clock::date_str(state.clock().today()),
                    )
                    .await?
                    .and_then(|s| s.person_id),
                    None => None,
                },
            };
            if let Some(m) = manager {
                notify(
                    &mut tx,
                    state,
                    m,
                    incident_id,
                    &inc.title,
                    "incident.notice.instructed",
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

fn clause_of(seq: i64) -> &'static str {
    match seq {
        1 => "K10.2",
        _ => "K10.3",
    }
}

/// Flags and escalates every step past its deadline at `now` (K10:
/// 「速やかに」): the step is marked, its holder reminded, and the next
/// step up opened (or, if already open, its holder told). Returns how many
/// steps were escalated. The background task calls this every minute;
/// tests call it with a chosen time.
pub async fn escalate_overdue(state: &AppState, now: i64) -> Result<usize, AppError> {
    let overdue = {
        let mut conn = state.db().pool().acquire().await?;
        store::overdue_steps(&mut conn, now).await?
    };
    let mut n = 0;
    for (incident_id, step) in overdue {
        let mut tx = state.db().begin().await?;
        store::lock(&mut tx, incident_id).await?;
        if !store::mark_escalated(&mut tx, step.id, now).await? {
            continue;
        }
        let Some((inc, _)) = store::get(&mut tx, incident_id, now).await? else {
            continue;
        };
        entry(
            &mut tx,
            state,
            &Who::Scheduler,
            "",
            incident_id,
            "escalated",
            "incident.escalate",
            clause_of(step.seq),
            json!({ "step": step.seq, "due_at": step.due_at,
                                         "person_id": step.person_id }),
        )
        .await?;
        if let Some(p) = step.person_id {
            notify(
                &mut tx,
                state,
                p,
                incident_id,
                &inc.title,
                "incident.notice.overdue",
            )
            .await?;
        }
        let steps = store::steps(&mut tx, incident_id, now).await?;
        if step.seq < 3 {
            match steps.iter().find(|s| s.seq == step.seq + 1) {
                Some(next) => {
                    if let Some(p) = next.person_id {
                        notify(
                            &mut tx,
                            state,
                            p,
                            incident_id,
                            &inc.title,
                            "incident.notice.escalated",
                        )
                        .await?;
                    }
                }
                None => {
                    open_step(
                        &mut tx,
                        state,
                        &inc,
                        step.seq + 1,
                        "incident.notice.escalated",
                    )
                    .await?
                }
            }
        } else if let Some(p) = steps.iter().find(|s| s.seq == 2).and_then(|s| s.person_id) {
            // Nobody above the CIO: the 統括者 who reported is told.
            notify(
                &mut tx,
                state,
                p,
                incident_id,
                &inc.title,
                "incident.notice.escalated",
            )
            .await?;
        }
        tx.commit().await?;
        n += 1;
    }
    if n > 0 {
        state.ledger().poke();
    }
    Ok(n)
}

/// Promotes a report to a security incident (セキュリティ障害等, K27): the
/// K27 checklist applies from now on, and the 統括者 is told (K27.1.1).
pub async fn promote(
    state: &AppState,
    actor: &Actor,
    id: i64,
    reason: &str,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", reason, MAX_COMMENT, true);
    done(errors)?;
    let mut tx = state.db().begin().await?;
    store::lock(&mut tx, id).await?;
    let (inc, _) = load_visible(&mut tx, actor, id, now).await?;
    if !can_handle(&mut tx, actor, &inc).await? {
        return Err(AppError::Forbidden(Action::HandleIncidents.code()));
    }
    if inc.security {
        return Err(AppError::Conflict("incident.already_security"));
    }
    store::set_security(&mut tx, id, now).await?;
    entry(
        &mut tx,
        state,
        &actor.who(),
        actor.ip(),
        id,
        "promoted",
        "incident.promote",
        "K27.1",
        json!({ "reason": reason.trim() }),
    )
    .await?;
    let today = crate::clock::date_str(state.clock().today());
    if let Some(d) = ward_holder(&mut tx, Role::SecurityDirector, &today).await? {
        notify(
            &mut tx,
            state,
            d,
            id,
            &inc.title,
            "incident.notice.promoted",
        )
        .await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// One in-app notification, in the reader's language.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub incident_id: Option<i64>,
    pub message: String,
    pub created_at: i64,
    pub read: bool,
}

pub async fn my_notifications(
    state: &AppState,
    actor: &Actor,
) -> Result<Vec<NotificationView>, AppError> {
    let Some(p) = actor.person_id else {
        return Ok(vec![]);
    };
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::notifications(&mut conn, p, 50)
        .await?
        .into_iter()
        .map(|n| {
            let params: Vec<(&str, String)> = ["id", "title"]
                .iter()
                .map(|k| {
                    let v = match &n.params[*k] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        v => v.to_string(),
                    };
                    (*k, v)
                })
                .collect();
            NotificationView {
                id: n.id,
                incident_id: n.incident_id,
                message: i18n::t(i18n::current(), &n.key, &params),
                created_at: n.created_at,
                read: n.read_at.is_some(),
            }
        })
        .collect())
}

pub async fn mark_read(state: &AppState, actor: &Actor) -> Result<u64, AppError> {
    let Some(p) = actor.person_id else {
        return Ok(0);
    };
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::mark_read(&mut conn, p, state.clock().unix()).await?)
}

/// Keeps what was typed in a report form that did not go through.
pub async fn save_draft(
    state: &AppState,
    actor: &Actor,
    draft: &serde_json::Value,
) -> Result<(), AppError> {
    let Some(p) = actor.person_id else {
        return Ok(());
    };
    let mut conn = state.db().pool().acquire().await?;
    store::save_draft(&mut conn, p, draft, state.clock().unix()).await?;
    Ok(())
}

pub async fn load_draft(
    state: &AppState,
    actor: &Actor,
) -> Result<Option<serde_json::Value>, AppError> {
    let Some(p) = actor.person_id else {
        return Ok(None);
    };
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::draft(&mut conn, p).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_typed_by_people() {
        let t = parse_time("2026-04-01 09:30").unwrap();
        assert_eq!(parse_time("2026-04-01T09:30"), Some(t));
        assert_eq!(parse_time("2026-04-01T09:30:00+09:00"), Some(t));
        assert_eq!(parse_time("2026-04-01T00:30:00Z"), Some(t));
        assert_eq!(parse_time("2026-04-01"), Some(t - 9 * 3600 - 30 * 60));
        assert_eq!(parse_time("R8.4.1"), parse_time("2026-04-01"));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time(""), None);
    }

    #[test]
    fn future_times_are_refused_naming_the_field() {
        let mut e = Vec::new();
        let now = parse_time("2026-04-01 09:00").unwrap();
        assert!(check_time(&mut e, "noticed_at", "2026-04-02 09:00", true, now).is_none());
        assert_eq!(e[0].field, "noticed_at");
        assert_eq!(e[0].code, "incident.future");
        e.clear();
        assert!(check_time(&mut e, "noticed_at", "2026-04-01 09:04", true, now).is_some());
        assert!(e.is_empty());
    }
}
