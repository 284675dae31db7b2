//! Self-inspection (自己点検, K32.1, K29; SPEC §3.9).
//!
//! - The セキュリティ統括者 orders a campaign (K32.1: the managers report to
//!   the 統括者; SPEC §1: the 統括者 orders inspections): a title, the fiscal
//!   year, a start date and a deadline, and the departments it goes to —
//!   by default every org unit with a セキュリティ管理者 today.
//! - Opening it snapshots the questions from the catalog's procedural
//!   controls (`mamori_policy::catalog`), so a later catalog change never
//!   alters an open campaign, and creates one inspection per department,
//!   addressed to that department's セキュリティ管理者 (mailed through the
//!   outbox of [`crate::mail`]).
//! - The manager answers each question (conforms / partly / does not
//!   conform / not applicable, with a comment and evidence files), saves
//!   drafts, and submits to the 統括者. While it is open, the department's
//!   automatic-check results are shown beside the questions, read-only;
//!   submission freezes them with the answers. After submission the
//!   inspection is read-only; the 統括者 may return it with a reason.
//! - A closed campaign takes no answers. [`service::compile`] compiles a
//!   campaign ward-wide (K32.3: the 統括者 compiles and reports to the CIO).
//! - The automatic check `k32.1.inspection-unfiled` ([`check`]) lists the
//!   departments whose latest inspection past its deadline is not submitted.

pub mod api;
pub mod check;
pub mod pages;
pub mod service;
pub mod store;

use crate::ids::{OrgUnitId, PersonId};
use serde::Serialize;
use utoipa::ToSchema;

/// The answers a question may get, in the order shown.
pub const ANSWERS: [&str; 4] = ["conforms", "partly", "not_conform", "not_applicable"];

/// Where a department's inspection stands.
pub const STATUSES: [&str; 4] = ["not_started", "draft", "submitted", "returned"];

/// A campaign as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Campaign {
    pub id: i64,
    pub title: String,
    /// 年度 (April to March), e.g. 2026 for 令和8年度.
    pub fiscal_year: i64,
    /// First day (YYYY-MM-DD).
    pub starts_on: String,
    /// Deadline, last day to submit (YYYY-MM-DD).
    pub due_on: String,
    pub note: String,
    /// `open` or `closed`.
    pub status: String,
    pub ordered_by: Option<PersonId>,
    pub ordered_by_name: Option<String>,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub question_count: i64,
    pub inspection_count: i64,
    pub submitted_count: i64,
    /// The deadline has passed (the ward's today).
    pub past_due: bool,
}

/// A question of a campaign: a procedural control of the catalog as it
/// was when the campaign opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Question {
    pub id: i64,
    pub seq: i64,
    pub control_id: String,
    /// Clause ids as the policy is cited (e.g. `K32.1`).
    pub clauses: Vec<String>,
    pub title_ja: String,
    pub title_en: String,
    pub question_ja: String,
    pub question_en: String,
}

/// A department's inspection as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InspectionSummary {
    pub id: i64,
    pub campaign_id: i64,
    pub campaign_title: String,
    pub campaign_status: String,
    pub due_on: String,
    pub org_unit_id: OrgUnitId,
    pub org_unit_name: String,
    /// The セキュリティ管理者 it was addressed to when the campaign opened.
    pub manager_id: Option<PersonId>,
    pub manager_name: Option<String>,
    /// One of [`STATUSES`].
    pub status: String,
    pub updated_at: i64,
    pub submitted_at: Option<i64>,
    pub returned_at: Option<i64>,
    pub return_reason: String,
}

/// Evidence attached to an answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Evidence {
    pub id: i64,
    pub question_id: i64,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_at: i64,
    pub url: String,
}

/// One question with the department's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnsweredQuestion {
    #[serde(flatten)]
    pub question: Question,
    /// One of [`ANSWERS`], or none yet.
    pub answer: Option<String>,
    pub comment: String,
    pub evidence: Vec<Evidence>,
    /// Ids of the automatic checks on the same clauses (see `checks`).
    pub related_checks: Vec<String>,
}

/// An automatic check's result for the department, shown read-only.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
pub struct CheckResult {
    pub id: String,
    pub clause: String,
    pub title_ja: String,
    pub title_en: String,
    pub passed: bool,
    /// Offending items in the department.
    pub items: i64,
    /// Start of the failing streak.
    pub since: Option<i64>,
    /// When the check last ran.
    pub ran_at: Option<i64>,
}

/// A department's inspection with everything on its page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InspectionView {
    #[serde(flatten)]
    pub summary: InspectionSummary,
    pub questions: Vec<AnsweredQuestion>,
    /// The department's automatic-check results: live while it can be
    /// edited, as they were at submission afterwards.
    pub checks: Vec<CheckResult>,
    /// The check results are the ones frozen at submission.
    pub checks_frozen: bool,
    /// Answers can be changed now (campaign open, not submitted).
    pub editable: bool,
}

/// A department's line in the compilation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DepartmentStatus {
    pub inspection_id: i64,
    pub org_unit_id: OrgUnitId,
    pub org_unit_name: String,
    pub manager_name: Option<String>,
    pub status: String,
    pub submitted_at: Option<i64>,
}

/// How the submitted inspections answered one question.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuestionTally {
    pub question_id: i64,
    pub seq: i64,
    pub control_id: String,
    pub clauses: Vec<String>,
    pub title_ja: String,
    pub title_en: String,
    pub conforms: i64,
    pub partly: i64,
    pub not_conform: i64,
    pub not_applicable: i64,
    /// Departments that have not submitted yet.
    pub pending: i64,
}

/// An answer of "does not conform" or "partly" in a submitted inspection.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Nonconformity {
    pub inspection_id: i64,
    pub org_unit_id: OrgUnitId,
    pub org_unit_name: String,
    pub question_id: i64,
    pub control_id: String,
    pub clauses: Vec<String>,
    pub title_ja: String,
    pub title_en: String,
    /// `not_conform` or `partly`.
    pub answer: String,
    pub comment: String,
}

/// Counts of departments by status.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StatusCounts {
    pub not_started: i64,
    pub draft: i64,
    pub submitted: i64,
    pub returned: i64,
}

/// A campaign compiled ward-wide (K32.3), for the 統括者's report to the CIO.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Compilation {
    pub campaign: Campaign,
    pub counts: StatusCounts,
    pub departments: Vec<DepartmentStatus>,
    pub questions: Vec<QuestionTally>,
    pub nonconformities: Vec<Nonconformity>,
}
