//! Incidents and failures (SPEC §3.6; K10, K16.4, K25, K26, K27, K33.1.6).
//!
//! - A report (事故, 障害, 不正アクセスの疑い, ウイルス, 紛失, その他) walks the
//!   chain of K10.1–3 as timed steps: the reporter's セキュリティ管理者, the
//!   セキュリティ統括者, the 最高情報統括責任者 ([`service`]).
//! - A report promoted to a security incident (セキュリティ障害等) gets the
//!   K27 response as an append-only timeline of typed entries
//!   ([`response`]), each one a record.
//! - Failure records (K16.4), their recurrence analysis (K10.4) and the
//!   per-system failure procedures (K26) are in [`failures`].
//! - E-mail leaves through the outbox of [`crate::mail`].
//!
//! # Who holds a step ("absence")
//! The manager step goes to the nearest セキュリティ管理者 holding the role
//! today, walking up from the reporter's unit (the unit's own manager, else
//! the one above: `org::service::unit_security_manager`). If nobody up the
//! tree holds it, the step is opened without a person, marked
//! `no_holder`, and the report goes straight on to the セキュリティ統括者.
//! The director step without a holder goes to the セキュリティ総括管理者
//! (SPEC §1: acts when the 統括者 is absent), marked `acting`. A CIO step
//! without a holder stays open without a person and is flagged. A holder
//! who is there but does not act is handled by the deadline: an overdue
//! step is flagged and the next step up is opened (`escalated`).

pub mod api;
pub mod attachments;
pub mod export;
pub mod failures;
pub mod pages;
pub mod response;
pub mod service;
pub mod store;

use crate::ids::{OrgUnitId, PersonId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What was reported (K10.1 事故・障害; K24 ウイルス; K11.2.2 ICカード紛失;
/// K12.1.3 媒体).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 情報セキュリティに関する事故.
    Accident,
    /// 情報システムの障害.
    Failure,
    /// 不正アクセスの疑い.
    Intrusion,
    /// ウイルス.
    Virus,
    /// 紛失 (card, media, device).
    Loss,
    /// その他.
    Other,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Accident,
        Kind::Failure,
        Kind::Intrusion,
        Kind::Virus,
        Kind::Loss,
        Kind::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Kind::Accident => "accident",
            Kind::Failure => "failure",
            Kind::Intrusion => "intrusion",
            Kind::Virus => "virus",
            Kind::Loss => "loss",
            Kind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == s)
    }
}

/// What was lost, for [`Kind::Loss`].
pub const LOST_ITEMS: [&str; 3] = ["card", "media", "device"];

/// Where a report stands.
pub const STATUSES: [&str; 5] = [
    "at_manager",
    "at_director",
    "at_cio",
    "chain_done",
    "closed",
];

/// The roles of the chain's steps, in order (K10.1–3).
pub const STEP_ROLES: [&str; 3] = ["security_manager", "security_director", "cio"];

/// One step of the chain as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StepView {
    pub id: i64,
    /// 1 manager, 2 director, 3 CIO.
    pub seq: i64,
    pub role: String,
    pub person_id: Option<PersonId>,
    pub person_name: Option<String>,
    pub org_unit_id: Option<OrgUnitId>,
    /// `""`, `no_holder` (nobody holds the role), `acting` (the
    /// セキュリティ総括管理者 for an absent 統括者).
    pub substitute: String,
    pub opened_at: i64,
    pub due_at: i64,
    pub acknowledged_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub escalated_at: Option<i64>,
    /// Past its deadline and not completed (at the time of reading).
    pub overdue: bool,
}

/// A timeline entry (append-only; each is a record).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    pub id: i64,
    pub kind: String,
    /// As records name actors, e.g. `person:12`, `mamori:scheduler`.
    pub actor: String,
    pub actor_name: Option<String>,
    pub at: i64,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The record written with it (ledger event `r<id>` of system `mamori`).
    pub record_id: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_at: i64,
    pub url: String,
}

/// A report as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentSummary {
    pub id: i64,
    pub kind: String,
    pub lost_item: String,
    pub title: String,
    pub noticed_at: i64,
    pub system_code: String,
    pub reporter_id: PersonId,
    pub reporter_name: String,
    pub reporter_unit_id: Option<OrgUnitId>,
    pub reporter_unit_name: Option<String>,
    /// Reported by staff of a 指定管理者 or 関係団体 (K33.1.6).
    pub outside_org: bool,
    pub status: String,
    /// Promoted to a security incident (K27).
    pub security: bool,
    pub created_at: i64,
    /// Some step is past its deadline.
    pub overdue: bool,
}

/// A report with everything on its page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentView {
    #[serde(flatten)]
    pub summary: IncidentSummary,
    pub description: String,
    pub steps: Vec<StepView>,
    pub timeline: Vec<EntryView>,
    pub attachments: Vec<AttachmentView>,
    /// The K27 checklist, for a security incident.
    pub checklist: Vec<ChecklistItem>,
    pub failure_record: Option<failures::FailureRecord>,
    /// Current failure procedure of the report's system (K26), if any.
    pub procedure: Option<failures::ProcedureSummary>,
}

/// One item of the K27 checklist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChecklistItem {
    pub clause: String,
    /// The entry kinds that satisfy it.
    pub key: String,
    pub done: bool,
    /// Needed in every security incident (the others apply when relevant).
    pub required: bool,
}
