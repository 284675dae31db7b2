//! The response to a security incident (セキュリティ障害等, K27; K25.3–4):
//! typed entries on the incident's append-only timeline, each one a record.
//!
//! | kind | clause | who |
//! | --- | --- | --- |
//! | `assessment`: content, suspected cause, confirmed damage/scope | K27.1.1.a–c | handlers |
//! | `containment`: cut a network / stop a system / other / not needed, who ordered (the actor), who executed | K27.1.2 | handlers |
//! | `emergency_action`: an operator's own cut or stop, reported afterwards | K27.1.2 ただし書き | 運用管理者 who can see the report |
//! | `evidence`: ledger records linked (with the log size for their proofs) and/or an evidence bundle frozen | K27.1.3 | handlers (freezing also needs `FreezeEvidence`) |
//! | `recovery`: temporary measure, recovered at — only after evidence | K27.1.4 | handlers |
//! | `prevention_plan`: root cause and plan | K27.1.5 | handlers |
//! | `prevention_agreed`: agreed by the 統括者, reported to the CIO | K27.1.5 | セキュリティ統括者 (総括管理者 acting) |
//! | `outside_notice`: affected outside parties and agencies notified, or not needed | K27.3 | 最高情報統括責任者 |
//! | `police_contact`: police / agency contact for a crime under 不正アクセス禁止法 | K25.3 | 統括者 (総括管理者 acting) |
//! | `misconduct`: staff misconduct, routed to the manager of their unit | K25.4 | 統括者 (総括管理者 acting) |
//! | `note`: progress of the handling | K27.1.3.b | handlers |
//! | `closed`: the report is closed (after the chain is done) | K10.4 | handlers |
//!
//! "Handlers" are the holders of the report's steps and those with
//! `HandleIncidents` over the reporter's unit.

use super::service::{self, check_time, entry, notify, MAX_COMMENT};
use super::{store, ChecklistItem};
use crate::app::AppState;
use crate::auth::Actor;
use crate::ids::PersonId;
use crate::web::error::{AppError, FieldError};
use crate::web::json::{check_text, done};
use mamori_policy::permission::Action;
use mamori_policy::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// The entry kinds one may add, with their action and clause.
pub const KINDS: &[(&str, &str, &str)] = &[
    ("assessment", "incident.assessment", "K27.1.1"),
    ("containment", "incident.containment", "K27.1.2"),
    ("emergency_action", "incident.emergency_action", "K27.1.2"),
    ("recovery", "incident.recovery", "K27.1.4"),
    ("prevention_plan", "incident.prevention_plan", "K27.1.5"),
    ("prevention_agreed", "incident.prevention_agreed", "K27.1.5"),
    ("outside_notice", "incident.outside_notice", "K27.3"),
    ("police_contact", "incident.police_contact", "K25.3"),
    ("misconduct", "incident.misconduct", "K25.4"),
    ("note", "incident.note", "K27.1.3"),
    ("closed", "incident.close", "K10.4"),
];

/// The K27 checklist: (clause, entry kinds that satisfy it, required).
const CHECKLIST: &[(&str, &[&str], bool)] = &[
    ("K27.1.1", &["assessment"], true),
    ("K27.1.2", &["containment", "emergency_action"], true),
    ("K27.1.3", &["evidence"], true),
    ("K27.1.4", &["recovery"], true),
    ("K27.1.5", &["prevention_agreed"], true),
    ("K27.3", &["outside_notice"], true),
    ("K25.3", &["police_contact"], false),
    ("K25.4", &["misconduct"], false),
];

pub fn checklist(present: &[String]) -> Vec<ChecklistItem> {
    CHECKLIST
        .iter()
        .map(|(clause, kinds, required)| ChecklistItem {
            clause: clause.to_string(),
            key: kinds[0].to_string(),
            done: kinds.iter().any(|k| present.iter().any(|p| p == k)),
            required: *required,
        })
        .collect()
}

/// Measures of K27.1.2.
pub const MEASURES: [&str; 4] = ["cut_network", "stop_system", "other", "not_needed"];
/// The situations of K27.1.2.ア–エ.
pub const CONDITIONS: [&str; 4] = ["a", "b", "c", "d"];

/// `POST /api/v1/incidents/{id}/entries`: `kind` and the fields it uses.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    #[serde(default)]
    pub kind: String,
    /// assessment: セキュリティ障害等の内容 (K27.1.1.a).
    #[serde(default)]
    pub content: String,
    /// assessment: 想定される原因 (K27.1.1.b).
    #[serde(default)]
    pub suspected_cause: String,
    /// assessment: 確認した被害・影響範囲 (K27.1.1.c).
    #[serde(default)]
    pub damage_scope: String,
    /// containment / emergency_action: `cut_network`, `stop_system`, `other`
    /// (`not_needed` for containment only).
    #[serde(default)]
    pub measure: String,
    /// containment: the situation of K27.1.2 (`a`–`d` for ア–エ).
    #[serde(default)]
    pub condition: String,
    /// containment: the employee number of the operator who executed it;
    /// misconduct: the staff member concerned.
    #[serde(default)]
    pub employee_number: String,
    /// When it was executed / recovered / notified / contacted (not in the future).
    #[serde(default)]
    pub at: String,
    /// recovery: 再発防止の暫定措置 (K27.1.4).
    #[serde(default)]
    pub temporary_measure: String,
    /// prevention_plan: 原因調査の結果.
    #[serde(default)]
    pub root_cause: String,
    /// prevention_plan: 再発防止策.
    #[serde(default)]
    pub plan: String,
    /// outside_notice: who was notified; police_contact: which agency.
    #[serde(default)]
    pub parties: String,
    /// outside_notice: `true` when no outside party is affected.
    #[serde(default)]
    pub not_needed: bool,
    /// Free text: the order, the reason, the contact, the note.
    #[serde(default)]
    pub note: String,
}

fn spec(kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    KINDS.iter().find(|k| k.0 == kind).copied()
}

fn holds_director(actor: &Actor) -> bool {
    actor.holds(Role::SecurityDirector) || actor.holds(Role::SecurityChiefManager)
}

/// Adds an entry. Bad fields are a 422 naming them; a kind the actor may
/// not add is a 403.
pub async fn add_entry(
    state: &AppState,
    actor: &Actor,
    id: i64,
    input: &EntryInput,
) -> Result<(), AppError> {
    let now = state.clock().unix();
    let Some((kind, action, clause)) = spec(input.kind.trim()) else {
        let code = if input.kind.trim().is_empty() {
            "field.required"
        } else {
            "incident.bad_entry_kind"
        };
        return Err(AppError::invalid("kind", code, &[]));
    };
    let mut tx = state.db().begin().await?;
    store::lock(&mut tx, id).await?;
    let (inc, _) = service::load_visible(&mut tx, actor, id, now).await?;
    let handler = service::can_handle(&mut tx, actor, &inc).await?;
    let allowed = match kind {
        "emergency_action" => actor.scope(Action::ReportEmergencyAction).is_some(),
        "prevention_agreed" | "police_contact" | "misconduct" => handler && holds_director(actor),
        "outside_notice" => handler && actor.holds(Role::Cio),
        _ => handler,
    };
    if !allowed {
        return Err(AppError::Forbidden(Action::HandleIncidents.code()));
    }
    let present = store::entry_kinds(&mut tx, id).await?;
    let has = |k: &str| present.iter().any(|p| p == k);
    let mut e: Vec<FieldError> = Vec::new();
    let text = |e: &mut Vec<FieldError>, f: &str, v: &str, req: bool| {
        check_text(e, f, v, MAX_COMMENT, req);
        v.trim().to_string()
    };
    let needs_security = !matches!(kind, "note" | "closed" | "emergency_action");
    if needs_security && !inc.security {
        e.push(FieldError::new("kind", "incident.not_security", &[]).with_clause("K27"));
    }
    let mut notify_to: Vec<(PersonId, &'static str)> = Vec::new();
    let today = crate::clock::date_str(state.clock().today());
    let detail = match kind {
        "assessment" => json!({
            "content": text(&mut e, "content", &input.content, true),
            "suspected_cause": text(&mut e, "suspected_cause", &input.suspected_cause, true),
            "damage_scope": text(&mut e, "damage_scope", &input.damage_scope, true),
        }),
        "containment" | "emergency_action" => {
            let m = input.measure.trim();
            let ok = if kind == "containment" {
                MEASURES.contains(&m)
            } else {
                MEASURES[..3].contains(&m)
            };
            if m.is_empty() {
                e.push(FieldError::new("measure", "field.required", &[]));
            } else if !ok {
                e.push(FieldError::new("measure", "incident.bad_measure", &[]));
            }
            let c = input.condition.trim();
            if !c.is_empty() && !CONDITIONS.contains(&c) {
                e.push(FieldError::new("condition", "incident.bad_condition", &[]));
            }
            let at = check_time(&mut e, "at", &input.at, kind == "emergency_action", now);
            let mut executed_by = None;
            let number = input.employee_number.trim();
            if kind == "emergency_action" {
                executed_by = actor.person_id;
            } else if !number.is_empty() {
                match crate::people::store::person_by_number(&mut tx, number).await? {
                    Some(p) => executed_by = Some(p.id),
                    None => e.push(FieldError::new(
                        "employee_number",
                        "incident.unknown_person",
                        &[],
                    )),
                }
            }
            let note = text(&mut e, "note", &input.note, kind == "emergency_action");
            if kind == "emergency_action" {
                // 事後報告: the manager of the report hears of it.
                if let Some(p) = store::steps(&mut tx, id, now)
                    .await?
                    .iter()
                    .find(|s| s.seq == 1)
                    .and_then(|s| s.person_id)
                {
                    notify_to.push((p, "incident.notice.emergency_action"));
                }
            }
            json!({ "measure": m, "condition": c, "ordered_by": if kind == "containment" { Some(actor.who().record_ref()) } else { None },
                    "executed_by": executed_by.map(|p| p.record_ref()), "executed_at": at,
                    "emergency": kind == "emergency_action", "note": note })
        }
        "recovery" => {
            // K27.1.4: 「前号の証拠保全の実施を完了した後」.
            if !has("evidence") {
                e.push(
                    FieldError::new("kind", "incident.evidence_first", &[]).with_clause("K27.1.4"),
                );
            }
            let at = check_time(&mut e, "at", &input.at, false, now);
            json!({ "temporary_measure": text(&mut e, "temporary_measure", &input.temporary_measure, true),
                    "recovered_at": at, "note": text(&mut e, "note", &input.note, false) })
        }
        "prevention_plan" => json!({
            "root_cause": text(&mut e, "root_cause", &input.root_cause, true),
            "plan": text(&mut e, "plan", &input.plan, true),
        }),
        "prevention_agreed" => {
            if !has("prevention_plan") {
                e.push(FieldError::new("kind", "incident.plan_first", &[]).with_clause("K27.1.5"));
            }
            let cio = crate::org::store::holders(&mut tx, Role::Cio.code(), None, &today).await?;
            if let Some((p, _)) = cio.first() {
                notify_to.push((*p, "incident.notice.prevention_reported"));
            }
            json!({ "agreed_by": actor.who().record_ref(), "reported_to_cio": cio.first().map(|c| c.0.record_ref()),
                    "note": text(&mut e, "note", &input.note, false) })
        }
        "outside_notice" => {
            let parties = text(&mut e, "parties", &input.parties, !input.not_needed);
            let at = check_time(&mut e, "at", &input.at, false, now);
            json!({ "parties": parties, "not_needed": input.not_needed, "notified_at": at,
                    "note": text(&mut e, "note", &input.note, false) })
        }
        "police_contact" => {
            let at = check_time(&mut e, "at", &input.at, false, now);
            json!({ "agency": text(&mut e, "parties", &input.parties, true), "contacted_at": at,
                    "note": text(&mut e, "note", &input.note, false) })
        }
        "misconduct" => {
            let number = input.employee_number.trim();
            let mut routed = None;
            let mut person = None;
            if number.is_empty() {
                e.push(FieldError::new("employee_number", "field.required", &[]));
            } else {
                match crate::people::store::person_by_number(&mut tx, number).await? {
                    None => e.push(FieldError::new(
                        "employee_number",
                        "incident.unknown_person",
                        &[],
                    )),
                    Some(p) => {
                        person = Some(p.id);
                        // K25.4: the manager of the unit (課 or 関係団体) the person belongs to.
                        if let Some(u) = p.org_unit_id {
                            if let Some(m) =
                                crate::org::service::unit_security_manager(&mut tx, u, &today)
                                    .await?
                            {
                                routed = m.person_id;
                            }
                        }
                        match routed {
                            Some(m) => notify_to.push((m, "incident.notice.misconduct")),
                            None => e.push(FieldError::new(
                                "employee_number",
                                "incident.no_manager",
                                &[],
                            )),
                        }
                    }
                }
            }
            json!({ "person": person.map(|p| p.record_ref()), "routed_to": routed.map(|p| p.record_ref()),
                    "note": text(&mut e, "note", &input.note, true) })
        }
        "note" => json!({ "note": text(&mut e, "note", &input.note, true) }),
        "closed" => {
            if inc.status != "chain_done" {
                e.push(FieldError::new("kind", "incident.chain_not_done", &[]).with_clause("K10"));
            }
            json!({ "note": text(&mut e, "note", &input.note, false) })
        }
        _ => json!({}),
    };
    done(e)?;
    entry(
        &mut tx,
        state,
        &actor.who(),
        actor.ip(),
        id,
        kind,
        action,
        clause,
        detail,
    )
    .await?;
    if kind == "closed" {
        store::set_status(&mut tx, id, "closed", now).await?;
    }
    if kind == "assessment" {
        // K27.1.1: reported to the 統括者.
        if let Some((p, _)) =
            crate::org::store::holders(&mut tx, Role::SecurityDirector.code(), None, &today)
                .await?
                .first()
        {
            notify_to.push((*p, "incident.notice.assessment"));
        }
    }
    for (p, key) in notify_to {
        notify(&mut tx, state, p, id, &inc.title, key).await?;
    }
    tx.commit().await?;
    state.ledger().poke();
    Ok(())
}

/// `POST /api/v1/incidents/{id}/evidence` (K27.1.3): link ledger records
/// and/or freeze a bundle through the evidence feature.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    /// Ledger indexes to link; their inclusion proofs are served at the log
    /// size recorded with the link.
    #[serde(default)]
    pub ledger_indexes: Vec<u64>,
    /// Freeze records into an evidence bundle (needs `FreezeEvidence`).
    #[serde(default)]
    pub freeze: Option<crate::ledger::bundle::FreezeRequest>,
    #[serde(default)]
    pub note: String,
}

/// Links evidence; returns the bundle id when one was frozen.
pub async fn preserve_evidence(
    state: &AppState,
    actor: &Actor,
    id: i64,
    input: &EvidenceInput,
) -> Result<Option<i64>, AppError> {
    let now = state.clock().unix();
    {
        let mut conn = state.db().pool().acquire().await?;
        let (inc, _) = service::load_visible(&mut conn, actor, id, now).await?;
        if !service::can_handle(&mut conn, actor, &inc).await? {
            return Err(AppError::Forbidden(Action::HandleIncidents.code()));
        }
        if !inc.security {
            return Err(AppError::Invalid(vec![FieldError::new(
                "kind",
                "incident.not_security",
                &[],
            )
            .with_clause("K27")]));
        }
    }
    let mut e = Vec::new();
    check_text(&mut e, "note", &input.note, MAX_COMMENT, false);
    if input.ledger_indexes.is_empty() && input.freeze.is_none() {
        e.push(FieldError::new(
            "ledger_indexes",
            "incident.evidence_empty",
            &[],
        ));
    }
    if input.ledger_indexes.len() > 1000 {
        e.push(FieldError::new(
            "ledger_indexes",
            "field.too_long",
            &[("max", "1000".into())],
        ));
    }
    let size = state.ledger().size().await?;
    if let Some(i) = input.ledger_indexes.iter().find(|&&i| i >= size) {
        e.push(FieldError::new(
            "ledger_indexes",
            "evidence.index_beyond",
            &[("index", i.to_string()), ("size", size.to_string())],
        ));
    }
    if let Some(f) = &input.freeze {
        // The bundle's reason names the incident; the person still says why.
        check_text(&mut e, "freeze.reason", f.reason.trim(), 2000, true);
    }
    done(e)?;
    let mut frozen = None;
    if let Some(f) = &input.freeze {
        if actor.scope(Action::FreezeEvidence).is_none() {
            return Err(AppError::Forbidden(Action::FreezeEvidence.code()));
        }
        let reason = format!("incident:{id} {}", f.reason.trim());
        let b = crate::ledger::bundle::freeze(state, actor, &f.query, &reason).await?;
        frozen = Some((b.id, b.bundle.records.len(), b.records_digest.to_hex()));
    }
    let mut tx = state.db().begin().await?;
    entry(&mut tx, state, &actor.who(), actor.ip(), id, "evidence", "incident.evidence", "K27.1.3",
        json!({ "ledger_indexes": input.ledger_indexes, "proof_size": size,
                "bundle_id": frozen.as_ref().map(|f| f.0), "bundle_records": frozen.as_ref().map(|f| f.1),
                "records_digest": frozen.as_ref().map(|f| f.2.clone()), "note": input.note.trim() })).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(frozen.map(|f| f.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checklist_follows_the_entries() {
        let c = checklist(&["assessment".into(), "emergency_action".into()]);
        let done: Vec<&str> = c
            .iter()
            .filter(|i| i.done)
            .map(|i| i.clause.as_str())
            .collect();
        assert_eq!(done, ["K27.1.1", "K27.1.2"]);
        assert!(c
            .iter()
            .filter(|i| !i.required)
            .all(|i| i.clause.starts_with("K25")));
    }
}
