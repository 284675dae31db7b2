//! Rules and transactions of self-inspection (K32.1, K29): every change is
//! checked (who, which department, campaign open, not yet submitted) and
//! written with its record in one transaction.

use super::store::{self, NewCampaign, NewEvidence, NewQuestion};
use super::{
    AnsweredQuestion, Campaign, CheckResult, Compilation, DepartmentStatus, Evidence,
    InspectionSummary, InspectionView, Nonconformity, Question, QuestionTally, StatusCounts,
    ANSWERS,
};
use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::clock::date_str;
use crate::db::Conn;
use crate::ids::{OrgUnitId, PersonId};
use crate::incidents::attachments::Stored;
use crate::records::{self, Record};
use crate::web::error::{AppError, FieldError};
use crate::web::i18n::{self, Lang};
use crate::web::json::{check_date, check_text, done};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// The clause of the inspection itself.
const CLAUSE: &str = "K32.1";
const MAX_TITLE: usize = 200;
const MAX_NOTE: usize = 2000;
const MAX_COMMENT: usize = 4000;
const MAX_REASON: usize = 2000;

// ---------------------------------------------------------------------------
// What a campaign is made of: the catalog's procedural controls and the
// automatic checks.

/// A procedural control of the catalog, as a question.
#[derive(Debug, Clone)]
pub struct SourceQuestion {
    pub control_id: String,
    pub clauses: Vec<String>,
    pub title_ja: String,
    pub title_en: String,
    pub question_ja: String,
    pub question_en: String,
}

/// The questions a campaign opened now would ask: every procedural control
/// of the catalog that has a question, in catalog order.
pub fn catalog_questions() -> Vec<SourceQuestion> {
    mamori_policy::catalog::catalog()
        .procedural_controls()
        .filter_map(|c| {
            let question_ja = c.question_ja.clone().filter(|q| !q.trim().is_empty())?;
            Some(SourceQuestion {
                control_id: c.id.clone(),
                clauses: c.clauses.iter().map(|id| id.to_string()).collect(),
                title_ja: c.title_ja.clone(),
                title_en: c.title_en.clone(),
                question_en: c
                    .question_en
                    .clone()
                    .filter(|q| !q.trim().is_empty())
                    .unwrap_or_else(|| c.title_en.clone()),
                question_ja,
            })
        })
        .collect()
}

/// The department's latest automatic-check results (only its items, from
/// `compliance::latest_for_unit`); checks that never ran are left out.
pub async fn unit_checks(conn: &mut Conn, unit: OrgUnitId) -> Result<Vec<CheckResult>, AppError> {
    Ok(crate::compliance::latest_for_unit(conn, unit.0)
        .await?
        .into_iter()
        .filter_map(|s| {
            Some(CheckResult {
                passed: s.passed?,
                id: s.id,
                clause: s.clause,
                title_ja: s.title_ja,
                title_en: s.title_en,
                items: s.item_count,
                since: s.since,
                ran_at: s.run_at,
            })
        })
        .collect())
}

/// Whether a check on `check_clause` concerns a question on `clauses`
/// (the same clause, or one inside the other).
fn related(clauses: &[String], check_clause: &str) -> bool {
    clauses.iter().any(|c| {
        c == check_clause
            || c.starts_with(&format!("{check_clause}."))
            || check_clause.starts_with(&format!("{c}."))
    })
}

// ---------------------------------------------------------------------------
// Campaigns

/// A campaign ordered by the セキュリティ統括者.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub title: String,
    /// 年度; by default the fiscal year (April to March) of `starts_on`.
    #[serde(default)]
    pub fiscal_year: Option<i64>,
    /// First day (YYYY-MM-DD or 和暦); by default today.
    #[serde(default)]
    pub starts_on: String,
    /// Deadline (YYYY-MM-DD or 和暦), today or later.
    #[serde(default)]
    pub due_on: String,
    #[serde(default)]
    pub note: String,
    /// The departments it goes to (org units with a セキュリティ管理者);
    /// empty for all of them.
    #[serde(default)]
    pub org_unit_ids: Vec<i64>,
}

/// The Japanese fiscal year (April to March) a date falls in.
pub fn fiscal_year_of(d: time::Date) -> i64 {
    let y = d.year() as i64;
    if u8::from(d.month()) >= 4 {
        y
    } else {
        y - 1
    }
}

/// Opens a campaign: snapshots the questions, creates one inspection per
/// department addressed to its セキュリティ管理者, and mails them.
pub async fn open_campaign(
    state: &AppState,
    actor: &Actor,
    input: &CampaignInput,
) -> Result<i64, AppError> {
    let today = state.clock().today();
    let today_s = date_str(today);
    let mut errors = Vec::new();
    check_text(&mut errors, "title", input.title.trim(), MAX_TITLE, true);
    check_text(&mut errors, "note", &input.note, MAX_NOTE, false);
    let starts = if input.starts_on.trim().is_empty() {
        Some(today)
    } else {
        check_date(&mut errors, "starts_on", input.starts_on.trim())
    };
    let due = if input.due_on.trim().is_empty() {
        errors.push(FieldError::new("due_on", "field.required", &[]));
        None
    } else {
        check_date(&mut errors, "due_on", input.due_on.trim())
    };
    if let Some(d) = due {
        if d < today {
            errors.push(FieldError::new("due_on", "inspection.due_in_past", &[]));
        } else if starts.is_some_and(|s| d < s) {
            errors.push(FieldError::new(
                "due_on",
                "inspection.due_before_start",
                &[],
            ));
        }
    }
    if let Some(y) = input.fiscal_year {
        if !(2000..=2200).contains(&y) {
            errors.push(FieldError::new(
                "fiscal_year",
                "inspection.bad_fiscal_year",
                &[],
            ));
        }
    }
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let all = store::departments(&mut tx, &today_s).await?;
    let chosen: Vec<_> = if input.org_unit_ids.is_empty() {
        all.clone()
    } else {
        let mut out: Vec<(OrgUnitId, String, PersonId, String)> = Vec::new();
        for (i, id) in input.org_unit_ids.iter().enumerate() {
            match all.iter().find(|d| d.0 .0 == *id) {
                Some(d) if !out.iter().any(|o| o.0 == d.0) => out.push(d.clone()),
                Some(_) => {}
                None => errors.push(FieldError::new(
                    format!("org_unit_ids[{i}]"),
                    "inspection.not_a_department",
                    &[("id", id.to_string())],
                )),
            }
        }
        out
    };
    if chosen.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "org_unit_ids",
            "inspection.no_departments",
            &[],
        ));
    }
    let questions = catalog_questions();
    if questions.is_empty() {
        errors.push(FieldError::new("title", "inspection.no_questions", &[]));
    }
    done(errors)?;
    let (Some(starts), Some(due)) = (starts, due) else {
        return Err(AppError::Internal("dates checked above".into()));
    };
    let title = input.title.trim();
    let fiscal_year = input.fiscal_year.unwrap_or_else(|| fiscal_year_of(starts));
    let due_s = date_str(due);
    let id = store::insert_campaign(
        &mut tx,
        &NewCampaign {
            title,
            fiscal_year,
            starts_on: &date_str(starts),
            due_on: &due_s,
            note: input.note.trim(),
            ordered_by: actor.person_id,
        },
        now,
    )
    .await?;
    for (seq, q) in questions.iter().enumerate() {
        store::insert_question(
            &mut tx,
            id,
            seq as i64 + 1,
            &NewQuestion {
                control_id: &q.control_id,
                clauses: &q.clauses,
                title_ja: &q.title_ja,
                title_en: &q.title_en,
                question_ja: &q.question_ja,
                question_en: &q.question_en,
            },
        )
        .await?;
    }
    let mut sent_to = Vec::new();
    for (unit, _, manager, _) in &chosen {
        let iid = store::insert_inspection(&mut tx, id, *unit, Some(*manager), now).await?;
        sent_to
            .push(json!({ "inspection_id": iid, "org_unit_id": unit.0, "manager_id": manager.0 }));
        mail_person(
            &mut tx,
            state,
            *manager,
            "inspection.mail.opened",
            &[
                ("title", title.to_string()),
                ("due", mamori_policy::wareki::format_date_ja(due)),
                ("url", format!("/inspections/{iid}")),
            ],
            now,
        )
        .await?;
    }
    let rec = Record::new(
        actor.who(),
        "inspection.campaign_open",
        format!("inspection_campaign:{id}"),
        CLAUSE,
    )
    .from_ip(actor.ip())
    .detail(json!({
        "title": title, "fiscal_year": fiscal_year, "due_on": due_s,
        "questions": questions.iter().map(|q| q.control_id.as_str()).collect::<Vec<_>>(),
        "inspections": sent_to,
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

/// Mails a person (in Japanese, the ward's language) if they keep an address.
async fn mail_person(
    conn: &mut Conn,
    state: &AppState,
    person: PersonId,
    key: &str,
    params: &[(&str, String)],
    now: i64,
) -> Result<(), AppError> {
    if let Some(addr) = crate::mail::address_of(conn, person.0).await? {
        let subject = i18n::t(Lang::Ja, &format!("{key}_subject"), params);
        let body = i18n::t(Lang::Ja, key, params);
        crate::mail::enqueue(conn, &state.config().mail, &addr, &subject, &body, now).await?;
    }
    Ok(())
}

/// Closes a campaign: it takes no more answers or submissions.
pub async fn close_campaign(state: &AppState, actor: &Actor, id: i64) -> Result<(), AppError> {
    let today = date_str(state.clock().today());
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let c = store::get_campaign(&mut tx, id, &today)
        .await?
        .ok_or(AppError::NotFound("inspection_campaign"))?;
    if !store::close_campaign(&mut tx, id, actor.person_id, now).await? {
        return Err(AppError::Conflict("inspection.campaign_closed"));
    }
    let rec = Record::new(
        actor.who(),
        "inspection.campaign_close",
        format!("inspection_campaign:{id}"),
        CLAUSE,
    )
    .from_ip(actor.ip())
    .detail(json!({ "title": c.title, "submitted": c.submitted_count, "inspections": c.inspection_count }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

pub async fn campaigns(state: &AppState) -> Result<Vec<Campaign>, AppError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::list_campaigns(&mut conn, &today).await?)
}

/// A campaign with its questions.
pub async fn campaign(state: &AppState, id: i64) -> Result<(Campaign, Vec<Question>), AppError> {
    let today = date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let c = store::get_campaign(&mut conn, id, &today)
        .await?
        .ok_or(AppError::NotFound("inspection_campaign"))?;
    let q = store::questions(&mut conn, id).await?;
    Ok((c, q))
}

// ---------------------------------------------------------------------------
// Inspections

async fn in_scope(conn: &mut Conn, scope: &ActorScope, unit: OrgUnitId) -> Result<bool, AppError> {
    Ok(crate::org::service::in_scope(conn, scope, unit).await?)
}

/// An inspection in `scope`; one outside it is "not found".
async fn load(conn: &mut Conn, scope: &ActorScope, id: i64) -> Result<InspectionSummary, AppError> {
    let s = store::get_inspection(conn, id)
        .await?
        .ok_or(AppError::NotFound("inspection"))?;
    if !in_scope(conn, scope, s.org_unit_id).await? {
        return Err(AppError::NotFound("inspection"));
    }
    Ok(s)
}

/// An inspection that can still be changed: campaign open, not submitted.
fn require_editable(s: &InspectionSummary) -> Result<(), AppError> {
    if s.campaign_status != "open" {
        return Err(AppError::Conflict("inspection.campaign_closed"));
    }
    if s.status == "submitted" {
        return Err(AppError::Conflict("inspection.already_submitted"));
    }
    Ok(())
}

/// Inspections in the scope, of one campaign or all.
pub async fn list(
    state: &AppState,
    scope: &ActorScope,
    campaign: Option<i64>,
) -> Result<Vec<InspectionSummary>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let all = store::list_inspections(&mut conn, campaign).await?;
    let mut out = Vec::new();
    for s in all {
        if in_scope(&mut conn, scope, s.org_unit_id).await? {
            out.push(s);
        }
    }
    Ok(out)
}

/// An inspection with its questions, answers, evidence and check results.
pub async fn view(
    state: &AppState,
    scope: &ActorScope,
    id: i64,
) -> Result<InspectionView, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let summary = load(&mut conn, scope, id).await?;
    let questions = store::questions(&mut conn, summary.campaign_id).await?;
    let answers = store::answers(&mut conn, id).await?;
    let evidence = store::evidence_of(&mut conn, id).await?;
    let frozen = store::frozen_checks(&mut conn, id).await?;
    let (checks, checks_frozen) = if summary.status == "submitted" && !frozen.is_empty() {
        (serde_json::from_str(&frozen).unwrap_or_default(), true)
    } else {
        (unit_checks(&mut conn, summary.org_unit_id).await?, false)
    };
    let questions = questions
        .into_iter()
        .map(|q| {
            let a = answers.iter().find(|a| a.0 == q.id);
            AnsweredQuestion {
                answer: a.map(|a| a.1.clone()).filter(|s| !s.is_empty()),
                comment: a.map(|a| a.2.clone()).unwrap_or_default(),
                evidence: evidence
                    .iter()
                    .filter(|e| e.question_id == q.id)
                    .cloned()
                    .collect(),
                related_checks: checks
                    .iter()
                    .filter(|c: &&CheckResult| related(&q.clauses, &c.clause))
                    .map(|c| c.id.clone())
                    .collect(),
                question: q,
            }
        })
        .collect();
    let editable = require_editable(&summary).is_ok();
    Ok(InspectionView {
        summary,
        questions,
        checks,
        checks_frozen,
        editable,
    })
}

/// Draft answers: each replaces the department's answer to that question.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswersInput {
    pub answers: Vec<AnswerInput>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    pub question_id: i64,
    /// `conforms`, `partly`, `not_conform`, `not_applicable`, or `""` for
    /// no answer yet.
    #[serde(default)]
    pub answer: String,
    #[serde(default)]
    pub comment: String,
}

/// Saves draft answers (nothing is checked for completeness until submission).
pub async fn save_answers(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    input: &AnswersInput,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let s = load(&mut tx, scope, id).await?;
    require_editable(&s)?;
    let questions = store::questions(&mut tx, s.campaign_id).await?;
    let mut errors = Vec::new();
    for (i, a) in input.answers.iter().enumerate() {
        if !questions.iter().any(|q| q.id == a.question_id) {
            errors.push(FieldError::new(
                format!("answers[{i}].question_id"),
                "inspection.unknown_question",
                &[("id", a.question_id.to_string())],
            ));
            continue;
        }
        if !a.answer.is_empty() && !ANSWERS.contains(&a.answer.as_str()) {
            errors.push(FieldError::new(
                format!("a-{}", a.question_id),
                "inspection.bad_answer",
                &[],
            ));
        }
        check_text(
            &mut errors,
            &format!("c-{}", a.question_id),
            &a.comment,
            MAX_COMMENT,
            false,
        );
    }
    done(errors)?;
    let mut changed = Vec::new();
    for a in &input.answers {
        let comment = a.comment.trim();
        if a.answer.is_empty() && comment.is_empty() {
            store::clear_answer(&mut tx, id, a.question_id).await?;
        } else {
            store::put_answer(
                &mut tx,
                id,
                a.question_id,
                &a.answer,
                comment,
                actor.person_id,
                now,
            )
            .await?;
        }
        changed.push(json!({ "question_id": a.question_id, "answer": a.answer }));
    }
    store::touch(&mut tx, id, actor.person_id, now).await?;
    let rec = Record::new(
        actor.who(),
        "inspection.answer",
        format!("inspection:{id}"),
        CLAUSE,
    )
    .from_ip(actor.ip())
    .detail(json!({ "org_unit_id": s.org_unit_id.0, "answers": changed }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// Submits to the セキュリティ統括者 (K32.1): every question answered, a
/// comment with every "partly" or "does not conform"; the check results
/// are frozen with it.
pub async fn submit(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let s = load(&mut tx, scope, id).await?;
    require_editable(&s)?;
    let questions = store::questions(&mut tx, s.campaign_id).await?;
    let answers = store::answers(&mut tx, id).await?;
    let mut errors = Vec::new();
    for q in &questions {
        match answers.iter().find(|a| a.0 == q.id) {
            Some((_, a, _)) if ANSWERS.contains(&a.as_str()) => {
                let c = &answers.iter().find(|x| x.0 == q.id).map(|x| x.2.clone());
                if (a == "partly" || a == "not_conform")
                    && c.as_deref().unwrap_or("").trim().is_empty()
                {
                    errors.push(FieldError::new(
                        format!("c-{}", q.id),
                        "inspection.comment_required",
                        &[("seq", q.seq.to_string())],
                    ));
                }
            }
            _ => errors.push(FieldError::new(
                format!("a-{}", q.id),
                "inspection.unanswered",
                &[("seq", q.seq.to_string())],
            )),
        }
    }
    done(errors)?;
    let checks = unit_checks(&mut tx, s.org_unit_id).await?;
    let frozen = serde_json::to_string(&checks).map_err(|e| AppError::Internal(e.to_string()))?;
    if !store::submit(&mut tx, id, actor.person_id, now, &frozen).await? {
        return Err(AppError::Conflict("inspection.already_submitted"));
    }
    let rec = Record::new(
        actor.who(),
        "inspection.submit",
        format!("inspection:{id}"),
        CLAUSE,
    )
    .from_ip(actor.ip())
    .detail(json!({
        "campaign_id": s.campaign_id, "org_unit_id": s.org_unit_id.0,
        "answers": answers.iter().map(|a| json!({ "question_id": a.0, "answer": a.1 })).collect::<Vec<_>>(),
        "failing_checks": checks.iter().filter(|c| !c.passed).map(|c| c.id.as_str()).collect::<Vec<_>>(),
    }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    // K32.1: the report goes to the セキュリティ統括者.
    let today = date_str(state.clock().today());
    for (director, _) in crate::org::store::holders(
        &mut tx,
        mamori_policy::Role::SecurityDirector.code(),
        None,
        &today,
    )
    .await?
    {
        mail_person(
            &mut tx,
            state,
            director,
            "inspection.mail.submitted",
            &[
                ("title", s.campaign_title.clone()),
                ("unit", s.org_unit_name.clone()),
                ("url", format!("/inspections/{id}")),
            ],
            now,
        )
        .await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// The 統括者 returns a submitted inspection for correction, with a reason.
pub async fn return_for_correction(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    reason: &str,
) -> Result<(), AppError> {
    let reason = reason.trim();
    let mut errors = Vec::new();
    check_text(&mut errors, "reason", reason, MAX_REASON, true);
    done(errors)?;
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let s = load(&mut tx, scope, id).await?;
    if s.campaign_status != "open" {
        return Err(AppError::Conflict("inspection.campaign_closed"));
    }
    if !store::return_for_correction(&mut tx, id, actor.person_id, now, reason).await? {
        return Err(AppError::Conflict("inspection.not_submitted"));
    }
    let rec = Record::new(
        actor.who(),
        "inspection.return",
        format!("inspection:{id}"),
        CLAUSE,
    )
    .from_ip(actor.ip())
    .detail(json!({ "org_unit_id": s.org_unit_id.0, "reason": reason }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    if let Some(m) = s.manager_id {
        mail_person(
            &mut tx,
            state,
            m,
            "inspection.mail.returned",
            &[
                ("title", s.campaign_title.clone()),
                ("reason", reason.to_string()),
                ("url", format!("/inspections/{id}")),
            ],
            now,
        )
        .await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// The largest evidence file in bytes (the ward's setting).
pub async fn evidence_max_bytes(conn: &mut Conn) -> Result<usize, sqlx::Error> {
    Ok(crate::settings::get(conn, "inspection.evidence_max_kb").await? as usize * 1024)
}

/// Checks an inspection can take evidence for `question` before the file
/// is stored (so a refused upload stores nothing).
pub async fn check_evidence_target(
    state: &AppState,
    scope: &ActorScope,
    id: i64,
    question: i64,
) -> Result<(), AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let s = load(&mut conn, scope, id).await?;
    require_editable(&s)?;
    let questions = store::questions(&mut conn, s.campaign_id).await?;
    if !questions.iter().any(|q| q.id == question) {
        return Err(AppError::invalid(
            "question_id",
            "inspection.unknown_question",
            &[("id", question.to_string())],
        ));
    }
    Ok(())
}

/// Links a stored file to an answer, with its record.
pub async fn add_evidence(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    id: i64,
    question: i64,
    f: &Stored,
) -> Result<i64, AppError> {
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    let s = load(&mut tx, scope, id).await?;
    require_editable(&s)?;
    let questions = store::questions(&mut tx, s.campaign_id).await?;
    if !questions.iter().any(|q| q.id == question) {
        return Err(AppError::invalid(
            "question_id",
            "inspection.unknown_question",
            &[("id", question.to_string())],
        ));
    }
    let eid = store::insert_evidence(
        &mut tx,
        &NewEvidence {
            inspection_id: id,
            question_id: question,
            file_name: &f.file_name,
            content_type: &f.content_type,
            size: f.size,
            sha256: &f.sha256,
            uploaded_by: actor.person_id,
        },
        now,
    )
    .await?;
    store::touch(&mut tx, id, actor.person_id, now).await?;
    let rec = Record::new(
        actor.who(),
        "inspection.evidence",
        format!("inspection:{id}"),
        CLAUSE,
    )
    .from_ip(actor.ip())
    .detail(json!({ "evidence_id": eid, "question_id": question, "file_name": f.file_name, "size": f.size, "sha256": f.sha256 }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(eid)
}

/// Evidence metadata and content, for someone who may see the inspection.
pub async fn read_evidence(
    state: &AppState,
    scope: &ActorScope,
    id: i64,
    eid: i64,
) -> Result<(Evidence, Vec<u8>), AppError> {
    let mut conn = state.db().pool().acquire().await?;
    load(&mut conn, scope, id).await?;
    let e = store::evidence(&mut conn, id, eid)
        .await?
        .ok_or(AppError::NotFound("evidence"))?;
    let bytes = crate::incidents::attachments::read_blob(state, &e.sha256).await?;
    Ok((e, bytes))
}

// ---------------------------------------------------------------------------
// Compilation (K32.3)

/// Compiles a campaign ward-wide: each department's status, per question
/// the distribution of the submitted answers, and the non-conformities
/// (answers "does not conform" and "partly") with department and clause.
/// Only submitted inspections count: a draft is not a report.
pub async fn compile(
    conn: &mut Conn,
    campaign_id: i64,
    today: time::Date,
) -> Result<Compilation, AppError> {
    let campaign = store::get_campaign(conn, campaign_id, &date_str(today))
        .await?
        .ok_or(AppError::NotFound("inspection_campaign"))?;
    let questions = store::questions(conn, campaign_id).await?;
    let inspections = store::list_inspections(conn, Some(campaign_id)).await?;
    let answers = store::submitted_answers(conn, campaign_id).await?;
    let mut counts = StatusCounts::default();
    let departments = inspections
        .iter()
        .map(|i| {
            match i.status.as_str() {
                "draft" => counts.draft += 1,
                "submitted" => counts.submitted += 1,
                "returned" => counts.returned += 1,
                _ => counts.not_started += 1,
            }
            DepartmentStatus {
                inspection_id: i.id,
                org_unit_id: i.org_unit_id,
                org_unit_name: i.org_unit_name.clone(),
                manager_name: i.manager_name.clone(),
                status: i.status.clone(),
                submitted_at: i.submitted_at,
            }
        })
        .collect();
    let pending = inspections.len() as i64 - counts.submitted;
    let mut tallies = Vec::new();
    let mut nonconformities = Vec::new();
    for q in &questions {
        let mut t = QuestionTally {
            question_id: q.id,
            seq: q.seq,
            control_id: q.control_id.clone(),
            clauses: q.clauses.clone(),
            title_ja: q.title_ja.clone(),
            title_en: q.title_en.clone(),
            conforms: 0,
            partly: 0,
            not_conform: 0,
            not_applicable: 0,
            pending,
        };
        for (iid, unit, unit_name, qid, answer, comment) in &answers {
            if *qid != q.id {
                continue;
            }
            match answer.as_str() {
                "conforms" => t.conforms += 1,
                "partly" => t.partly += 1,
                "not_conform" => t.not_conform += 1,
                "not_applicable" => t.not_applicable += 1,
                _ => {}
            }
            if answer == "partly" || answer == "not_conform" {
                nonconformities.push(Nonconformity {
                    inspection_id: *iid,
                    org_unit_id: *unit,
                    org_unit_name: unit_name.clone(),
                    question_id: q.id,
                    control_id: q.control_id.clone(),
                    clauses: q.clauses.clone(),
                    title_ja: q.title_ja.clone(),
                    title_en: q.title_en.clone(),
                    answer: answer.clone(),
                    comment: comment.clone(),
                });
            }
        }
        tallies.push(t);
    }
    // "Does not conform" first, then "partly"; by question within each.
    nonconformities.sort_by_key(|n| (n.answer != "not_conform", n.question_id));
    Ok(Compilation {
        campaign,
        counts,
        departments,
        questions: tallies,
        nonconformities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_years_start_in_april() {
        let d = |y, m, day| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), day).unwrap()
        };
        assert_eq!(fiscal_year_of(d(2026, 4, 1)), 2026);
        assert_eq!(fiscal_year_of(d(2027, 3, 31)), 2026);
        assert_eq!(fiscal_year_of(d(2027, 1, 5)), 2026);
    }

    #[test]
    fn checks_relate_to_questions_by_clause() {
        let q = vec!["K17.3".to_string()];
        assert!(related(&q, "K17.3"));
        assert!(related(&q, "K17"));
        assert!(related(&["K3".to_string()], "K3.2.1"));
        assert!(!related(&q, "K17.4"));
        assert!(!related(&["K1".to_string()], "K17.3"));
    }
}
