//! External audits (K32.2, SPEC §3.9).
//!
//! The セキュリティ統括者 orders an audit by an outside organisation with
//! expert knowledge: its scope, its period and the auditing organisation.
//! For the audit the 統括者 creates auditor accounts: each is a person of
//! employment `outside` holding the 外部監査人 role (read-only in the
//! permission table) from the audit's first day to its last. The window is
//! enforced where the actor is loaded (`auth::session::load_actor`) and at
//! login, so after the audit's last day (or once the audit is closed) every
//! page and API route refuses the account with a message naming the date.
//!
//! Findings carry a severity, the clauses concerned, an owner (a person),
//! a due date and a status; the owner writes follow-up entries and closes a
//! finding with a note; the 統括者 may reopen it. Entries are append-only and
//! every change is a record. Findings open past their due date are overdue.

pub mod api;
pub mod pages;
pub mod service;
pub mod store;

use crate::ids::PersonId;
use serde::Serialize;
use utoipa::ToSchema;

/// Severities of a finding, most severe first.
pub const SEVERITIES: [&str; 4] = ["high", "medium", "low", "observation"];
/// A finding is `open`, `in_progress` (follow-up written) or `closed`.
pub const FINDING_STATUSES: [&str; 3] = ["open", "in_progress", "closed"];
/// Kinds of follow-up entries.
pub const ENTRY_KINDS: [&str; 3] = ["progress", "close", "reopen"];

/// An audit as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditSummary {
    pub id: i64,
    pub title: String,
    /// What is audited: the systems and the management set-up (K32.2).
    pub scope: String,
    /// The outside organisation that audits.
    pub auditor_org: String,
    /// First day of the audit (auditor accounts work from this day).
    pub starts_on: String,
    /// Last day of the audit (auditor accounts stop working after it).
    pub ends_on: String,
    /// `open` or `closed`.
    pub status: String,
    /// `planned`, `in_progress`, `ended` (past its last day) or `closed`.
    pub phase: String,
    pub ordered_by: Option<PersonId>,
    pub ordered_by_name: Option<String>,
    pub open_findings: i64,
    pub overdue_findings: i64,
    pub created_at: i64,
}

/// An auditor account of an audit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditorView {
    pub person_id: PersonId,
    pub account_id: i64,
    pub login: String,
    pub name: String,
    /// The account works today (inside the audit's period, audit open).
    pub active: bool,
}

/// An audit with its auditors and findings.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    #[serde(flatten)]
    pub summary: AuditSummary,
    pub auditors: Vec<AuditorView>,
    pub findings: Vec<FindingSummary>,
}

/// A finding as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingSummary {
    pub id: i64,
    pub audit_id: i64,
    pub audit_title: String,
    pub title: String,
    /// One of `high`, `medium`, `low`, `observation`.
    pub severity: String,
    /// Clause ids as the policy's scheme writes them, e.g. `K17.3`.
    pub clauses: Vec<String>,
    pub owner_id: PersonId,
    pub owner_name: String,
    pub due_on: String,
    /// `open`, `in_progress` or `closed`.
    pub status: String,
    /// Not closed and past its due date (today in the ward).
    pub overdue: bool,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

/// One follow-up entry (append-only; each is a record).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingEntry {
    pub id: i64,
    /// `progress`, `close` or `reopen`.
    pub kind: String,
    pub note: String,
    /// As records name actors, e.g. `person:12`.
    pub actor: String,
    pub actor_name: Option<String>,
    pub at: i64,
    /// The record written with it.
    pub record_id: i64,
}

/// A finding with its description and follow-up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingView {
    #[serde(flatten)]
    pub summary: FindingSummary,
    pub description: String,
    pub entries: Vec<FindingEntry>,
}

/// The phase of an audit on `today` (dates as `YYYY-MM-DD`).
pub fn phase(status: &str, starts_on: &str, ends_on: &str, today: &str) -> &'static str {
    if status == "closed" {
        "closed"
    } else if today < starts_on {
        "planned"
    } else if today > ends_on {
        "ended"
    } else {
        "in_progress"
    }
}
