//! Training and awareness (K9): sessions (説明会・研修) with their audience
//! (all staff, chosen units, or chosen roles), required or not; attendance
//! marked by the organiser or a manager, or reported by the person
//! themself; completion by department; and the security manager's
//! instructions to the 情報化推進リーダー of their 課 (K9.2), which the
//! leader acknowledges.
//!
//! Who does what (permission table): the セキュリティ統括者 runs the ward's
//! training (K9.1) with the セキュリティ総括管理者 assisting (K8.1.4), both
//! ward-wide (`ManageTraining`); a セキュリティ管理者 holds sessions for
//! their own units and marks attendance of their staff (K8.1.3.キ, unit
//! scope); everyone sees the sessions meant for them and reports their own
//! attendance (`AttendTraining`, K9.3); managers, leaders, the ward-wide
//! roles and auditors read attendance and completion (`ViewTrainingRecords`);
//! the manager instructs the leader (`InstructPromotionLeaders`) and the
//! leader acknowledges (`AcknowledgeInstructions`). A self-report counts as
//! attendance and is marked as such (source `self`) on every list, so the
//! organiser can see which attendance they did not witness; the organiser
//! can mark or unmark anyone in scope.

pub mod api;
pub mod pages;
pub mod service;
pub mod store;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Who a session is for.
pub const AUDIENCES: [&str; 3] = ["all", "units", "roles"];

/// Roles a session can be aimed at (職員等 is everyone: use `all`).
pub const AUDIENCE_ROLES: [mamori_policy::Role; 6] = [
    mamori_policy::Role::SecurityManager,
    mamori_policy::Role::PromotionLeader,
    mamori_policy::Role::Operator,
    mamori_policy::Role::DesignatedViewer,
    mamori_policy::Role::SecurityChiefManager,
    mamori_policy::Role::SecurityDirector,
];

/// A training session as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    pub id: i64,
    pub title: String,
    /// `YYYY-MM-DD`.
    pub held_on: String,
    pub description: String,
    /// `all`, `units` or `roles`.
    pub audience: String,
    /// Unit ids (audience `units`; the units below are included).
    pub units: Vec<i64>,
    /// Role codes (audience `roles`).
    pub roles: Vec<String>,
    pub required: bool,
    pub organiser_id: Option<i64>,
    pub organiser_name: Option<String>,
    /// The organiser's unit scope; `None` for a ward-wide organiser.
    pub org_unit_id: Option<i64>,
    pub created_at: i64,
    pub cancelled_at: Option<i64>,
}

/// A session as the API and the form take it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    pub title: String,
    /// `YYYY-MM-DD` (西暦) or 和暦 such as `令和8年11月28日`.
    pub held_on: String,
    #[serde(default)]
    pub description: String,
    /// `all`, `units` or `roles`.
    pub audience: String,
    #[serde(default)]
    pub units: Vec<i64>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// One person of a session's audience, with their attendance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AudienceMember {
    pub person_id: i64,
    pub name: String,
    pub employee_number: String,
    pub unit_id: Option<i64>,
    pub unit_name: Option<String>,
    pub attended: bool,
    /// `organiser` or `self`.
    pub source: Option<String>,
    pub marked_at: Option<i64>,
}

/// Completion of one unit: people in the audience and how many attended.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnitCompletion {
    pub unit_id: Option<i64>,
    pub unit_name: String,
    pub audience: i64,
    pub attended: i64,
    /// Percent, rounded down.
    pub percent: i64,
}

/// Someone who missed a required session (the K9 check).
#[derive(Debug, Clone)]
pub struct Missing {
    pub session_id: i64,
    pub title: String,
    pub held_on: String,
    pub person_id: i64,
    pub name: String,
    pub employee_number: String,
    pub unit_id: Option<i64>,
}

/// A K9.2 instruction from a security manager to a 情報化推進リーダー.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Instruction {
    pub id: i64,
    pub org_unit_id: i64,
    pub unit_name: String,
    pub from_person_id: i64,
    pub from_name: String,
    pub to_person_id: i64,
    pub to_name: String,
    pub body: String,
    pub created_at: i64,
    pub acknowledged_at: Option<i64>,
}

/// An instruction as given.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstructionInput {
    /// The 情報化推進リーダー (person id), in one of the manager's units.
    pub to_person_id: i64,
    pub body: String,
}
