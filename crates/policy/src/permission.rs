//! Who may do what: the one permission table (SPEC §6 "a permission matrix").
//!
//! Every handler names the [`Action`] it needs; the server's extractor asks
//! [`scope_for`] and nothing else grants access.

use crate::role::Role;
use serde::Serialize;

/// Something a person can ask Mamori to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// My page, my password, my sessions (K11.1.5: change one's own password).
    UseOwnAccount,
    /// See the org tree and role holders.
    ViewOrg,
    /// Create and change org units.
    EditOrg,
    /// See people and their accounts.
    ViewPeople,
    /// Enter personnel events (採用/異動/派遣/退職, K17.3).
    RecordPersonnelEvent,
    /// Import the HR system's personnel CSV (K17.3).
    ImportPersonnel,
    /// Assign and end roles (Y4, K8, K18, K30.2).
    AssignRoles,
    /// Lock, unlock, force a password change, reset, end sessions (K11.1.5, K17.3).
    ManageAccounts,
    /// Force a password change for every account after a suspected compromise (K11.1.5).
    ForceChangeAll,
    /// Create shared accounts with a justification (K17.2).
    ManageSharedAccounts,
    /// Set the ward's settings, such as the password expiry period (K17.4).
    ManageSettings,
    /// Read the records of what Mamori did (K16.2).
    ViewRecords,
    /// See registered information systems.
    ViewSystems,
    /// Read the ledger's checkpoints, keys, hash tiles and proofs (K16.2.2,
    /// K32: auditors verify that no record was altered).
    AuditLedger,
    /// Counts, histograms and canned analyses of access records, without
    /// opening individual staff records (K16.2.3 periodic monitoring).
    AnalyzeLedger,
    /// Search and open individual access records of staff: only 指名閲覧者
    /// named by the security manager, within that manager's scope (K30.2–3).
    ViewStaffRecords,
    /// Read the viewing reports of one's designated viewers (K30.3).
    ReadViewingReports,
    /// Freeze records with their proofs as evidence of an incident (K27.1.3, K25.3).
    FreezeEvidence,
    /// Register and classify information assets of one's 課 (Y5, K3.1).
    ManageAssets,
    /// Ask for access to an asset, for oneself or for staff in scope (K3.2.1).
    RequestAccess,
    /// Decide access requests, end grants, name operators and review access
    /// for the assets one is the security manager of (K3.2.1, K18).
    DecideAccess,
    /// See who can access what, grants and reviews (K3.2.1, K17.2, K32).
    ViewAccess,
    /// Register IC cards for staff, suspend and reinstate them, report them
    /// lost and read the loss reports (K11.2.1–2). Everyone registers and
    /// reports their own cards under [`Action::UseOwnAccount`].
    ManageCards,
    /// Report an 事故, 障害, suspected intrusion, virus or loss (K10.1;
    /// staff of a 指定管理者 the same way, K33.1.6).
    ReportIncident,
    /// Open the incident pages and API: one's own reports and those one is
    /// involved in (a step, a notice); wider with [`Action::ViewIncidents`].
    ReadIncidents,
    /// See the incidents reported in one's scope, with their chain and
    /// timeline (K10.2–3, K27.2).
    ViewIncidents,
    /// Act on incidents: the reporting-chain steps given to one, and the
    /// K27 response (assessment, orders, evidence, recovery, prevention,
    /// outside notification, K25.3–4).
    HandleIncidents,
    /// Report a network cut or system stop taken on one's own judgement in
    /// an emergency (K27.1.2 ただし書き: 運用管理者, reported afterwards).
    ReportEmergencyAction,
    /// Keep failure records (K16.4 障害記録).
    RecordFailures,
    /// Search and analyse failure records (K16.4, K10.4).
    ViewFailureRecords,
    /// Write failure procedures with fallbacks, and say which systems need
    /// one (K26).
    ManageFailureProcedures,
    /// Read failure procedures (K26): everyone may need the fallback.
    ViewFailureProcedures,
    /// See the external audits, their auditors and all findings (K32.2).
    ViewAudits,
    /// Order an external audit, create its auditor accounts, record its
    /// findings and reopen them (K32.2: the セキュリティ統括者).
    ManageAudits,
    /// Open the findings pages: the findings one owns; all of them with
    /// [`Action::ViewAudits`] (K32.2).
    ReadFindings,
    /// Write follow-up on a finding one owns, and close it with a note (K32.2).
    FollowUpFindings,
    /// Read the compiled inspection and audit report (K32.3–4).
    ViewComplianceReport,
    /// See the automatic compliance checks: the dashboard by clause and
    /// department, trends, each check's items and history (Y8, K32).
    ViewCompliance,
    /// Run every compliance check now (they also run on a schedule).
    RunChecks,
    /// Hold training sessions and mark attendance (K9.1; a security
    /// manager for their own units, K8.1.3.キ).
    ManageTraining,
    /// See the sessions meant for one and report one's own attendance (K9.3).
    AttendTraining,
    /// Read attendance and completion by department (K9).
    ViewTrainingRecords,
    /// Instruct the 情報化推進リーダー of one's 課 (K9.2).
    InstructPromotionLeaders,
    /// Acknowledge the security manager's instructions (K9.2, K8.1.5).
    AcknowledgeInstructions,
    /// Read the policy catalog: clauses, controls, versions and reviews
    /// (SPEC §3.9). Everyone, external auditors included.
    ViewCatalog,
    /// Record a review of the policy and the version it produces (Y10, K34).
    RecordPolicyReview,
    /// Order self-inspection campaigns, close them, and return a submitted
    /// inspection for correction (K32.1, K32.3: the セキュリティ統括者).
    ManageInspections,
    /// Answer and submit one's department's self-inspection (K32.1, K29:
    /// the セキュリティ管理者).
    AnswerInspections,
    /// See self-inspections: one's department's, or ward-wide with their
    /// compilation (K32.1, K32.3).
    ViewInspections,
}

impl Action {
    pub const ALL: [Action; 49] = [
        Action::UseOwnAccount,
        Action::ViewOrg,
        Action::EditOrg,
        Action::ViewPeople,
        Action::RecordPersonnelEvent,
        Action::ImportPersonnel,
        Action::AssignRoles,
        Action::ManageAccounts,
        Action::ForceChangeAll,
        Action::ManageSharedAccounts,
        Action::ManageSettings,
        Action::ViewRecords,
        Action::ViewSystems,
        Action::AuditLedger,
        Action::AnalyzeLedger,
        Action::ViewStaffRecords,
        Action::ReadViewingReports,
        Action::FreezeEvidence,
        Action::ManageAssets,
        Action::RequestAccess,
        Action::DecideAccess,
        Action::ViewAccess,
        Action::ManageCards,
        Action::ReportIncident,
        Action::ReadIncidents,
        Action::ViewIncidents,
        Action::HandleIncidents,
        Action::ReportEmergencyAction,
        Action::RecordFailures,
        Action::ViewFailureRecords,
        Action::ManageFailureProcedures,
        Action::ViewFailureProcedures,
        Action::ViewAudits,
        Action::ManageAudits,
        Action::ReadFindings,
        Action::FollowUpFindings,
        Action::ViewComplianceReport,
        Action::ViewCompliance,
        Action::RunChecks,
        Action::ManageTraining,
        Action::AttendTraining,
        Action::ViewTrainingRecords,
        Action::InstructPromotionLeaders,
        Action::AcknowledgeInstructions,
        Action::ViewCatalog,
        Action::RecordPolicyReview,
        Action::ManageInspections,
        Action::AnswerInspections,
        Action::ViewInspections,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::UseOwnAccount => "use_own_account",
            Action::ViewOrg => "view_org",
            Action::EditOrg => "edit_org",
            Action::ViewPeople => "view_people",
            Action::RecordPersonnelEvent => "record_personnel_event",
            Action::ImportPersonnel => "import_personnel",
            Action::AssignRoles => "assign_roles",
            Action::ManageAccounts => "manage_accounts",
            Action::ForceChangeAll => "force_change_all",
            Action::ManageSharedAccounts => "manage_shared_accounts",
            Action::ManageSettings => "manage_settings",
            Action::ViewRecords => "view_records",
            Action::ViewSystems => "view_systems",
            Action::AuditLedger => "audit_ledger",
            Action::AnalyzeLedger => "analyze_ledger",
            Action::ViewStaffRecords => "view_staff_records",
            Action::ReadViewingReports => "read_viewing_reports",
            Action::FreezeEvidence => "freeze_evidence",
            Action::ManageAssets => "manage_assets",
            Action::RequestAccess => "request_access",
            Action::DecideAccess => "decide_access",
            Action::ViewAccess => "view_access",
            Action::ManageCards => "manage_cards",
            Action::ReportIncident => "report_incident",
            Action::ReadIncidents => "read_incidents",
            Action::ViewIncidents => "view_incidents",
            Action::HandleIncidents => "handle_incidents",
            Action::ReportEmergencyAction => "report_emergency_action",
            Action::RecordFailures => "record_failures",
            Action::ViewFailureRecords => "view_failure_records",
            Action::ManageFailureProcedures => "manage_failure_procedures",
            Action::ViewFailureProcedures => "view_failure_procedures",
            Action::ViewAudits => "view_audits",
            Action::ManageAudits => "manage_audits",
            Action::ReadFindings => "read_findings",
            Action::FollowUpFindings => "follow_up_findings",
            Action::ViewComplianceReport => "view_compliance_report",
            Action::ViewCompliance => "view_compliance",
            Action::RunChecks => "run_checks",
            Action::ManageTraining => "manage_training",
            Action::AttendTraining => "attend_training",
            Action::ViewTrainingRecords => "view_training_records",
            Action::InstructPromotionLeaders => "instruct_promotion_leaders",
            Action::AcknowledgeInstructions => "acknowledge_instructions",
            Action::ViewCatalog => "view_catalog",
            Action::RecordPolicyReview => "record_policy_review",
            Action::ManageInspections => "manage_inspections",
            Action::AnswerInspections => "answer_inspections",
            Action::ViewInspections => "view_inspections",
        }
    }
}

/// How far a permission reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The org unit the role is held for, and the units below it.
    Unit,
    /// The whole ward.
    Ward,
}

use Action as A;
use Role as R;
use Scope::{Unit, Ward};

/// The table. A (role, action) pair that is not here is denied.
pub const TABLE: &[(Role, Action, Scope)] = &[
    // Everyone with an account looks after their own credentials.
    (R::Staff, A::UseOwnAccount, Unit),
    (R::ExternalAuditor, A::UseOwnAccount, Ward),
    (R::Staff, A::ViewOrg, Ward),
    (R::ExternalAuditor, A::ViewOrg, Ward),
    (R::Staff, A::ViewSystems, Ward),
    (R::ExternalAuditor, A::ViewSystems, Ward),
    // The 情報化推進リーダー assists the manager inside the 課 (K8.1.5).
    (R::PromotionLeader, A::ViewPeople, Unit),
    // The security manager keeps the registration of their unit's staff (K17.3)
    // and names operators and viewers (K8.1.3.f, K30.2).
    (R::SecurityManager, A::ViewPeople, Unit),
    (R::SecurityManager, A::RecordPersonnelEvent, Unit),
    (R::SecurityManager, A::AssignRoles, Unit),
    (R::SecurityManager, A::ManageAccounts, Unit),
    (R::SecurityManager, A::ManageSharedAccounts, Unit),
    // The セキュリティ総括管理者 is the security manager of ward-wide systems,
    // Mamori included (Y4.3, K8.1.4).
    (R::SecurityChiefManager, A::ViewOrg, Ward),
    (R::SecurityChiefManager, A::EditOrg, Ward),
    (R::SecurityChiefManager, A::ViewPeople, Ward),
    (R::SecurityChiefManager, A::RecordPersonnelEvent, Ward),
    (R::SecurityChiefManager, A::ImportPersonnel, Ward),
    (R::SecurityChiefManager, A::AssignRoles, Ward),
    (R::SecurityChiefManager, A::ManageAccounts, Ward),
    (R::SecurityChiefManager, A::ForceChangeAll, Ward),
    (R::SecurityChiefManager, A::ManageSharedAccounts, Ward),
    (R::SecurityChiefManager, A::ManageSettings, Ward),
    (R::SecurityChiefManager, A::ViewRecords, Ward),
    // The セキュリティ統括者 oversees everything and may order a ward-wide
    // password change after a suspected compromise (K8.1.2, K11.1.5).
    (R::SecurityDirector, A::ViewPeople, Ward),
    (R::SecurityDirector, A::ForceChangeAll, Ward),
    (R::SecurityDirector, A::ViewRecords, Ward),
    (R::Cio, A::ViewPeople, Ward),
    (R::Cio, A::ViewRecords, Ward),
    // Auditors read; they never change anything (K32.2).
    (R::ExternalAuditor, A::ViewPeople, Ward),
    (R::ExternalAuditor, A::ViewRecords, Ward),
    // Checking the ledger's integrity reveals no record content.
    (R::SecurityChiefManager, A::AuditLedger, Ward),
    (R::SecurityDirector, A::AuditLedger, Ward),
    (R::Cio, A::AuditLedger, Ward),
    (R::ExternalAuditor, A::AuditLedger, Ward),
    (R::DesignatedViewer, A::AuditLedger, Ward),
    // K16.2.3: managers monitor and analyse the records of their systems;
    // aggregates open no individual record.
    (R::SecurityManager, A::AnalyzeLedger, Unit),
    (R::SecurityChiefManager, A::AnalyzeLedger, Ward),
    (R::SecurityDirector, A::AnalyzeLedger, Ward),
    (R::ExternalAuditor, A::AnalyzeLedger, Ward),
    // K30.2–3: only designated viewers open staff records, in their
    // manager's scope, and report on it to that manager.
    (R::DesignatedViewer, A::ViewStaffRecords, Unit),
    (R::SecurityManager, A::ReadViewingReports, Unit),
    (R::SecurityChiefManager, A::ReadViewingReports, Ward),
    // K27.1.3: evidence is preserved by those who handle incidents ward-wide.
    (R::SecurityChiefManager, A::FreezeEvidence, Ward),
    (R::SecurityDirector, A::FreezeEvidence, Ward),
    // K3.1: the security manager of the 課 that made the information
    // classifies it; the セキュリティ総括管理者 keeps the ward-wide register.
    (R::SecurityManager, A::ManageAssets, Unit),
    (R::SecurityChiefManager, A::ManageAssets, Ward),
    // K3.2.1: anyone may ask; the asset's own security manager decides (the
    // service checks it is the one named on the asset, K18).
    (R::Staff, A::RequestAccess, Unit),
    (R::SecurityManager, A::RequestAccess, Unit),
    (R::SecurityManager, A::DecideAccess, Unit),
    (R::SecurityChiefManager, A::DecideAccess, Ward),
    // 棚卸し and audit: who can access what.
    (R::SecurityManager, A::ViewAccess, Unit),
    (R::SecurityChiefManager, A::ViewAccess, Ward),
    (R::SecurityDirector, A::ViewAccess, Ward),
    (R::Cio, A::ViewAccess, Ward),
    (R::ExternalAuditor, A::ViewAccess, Ward),
    // K11.2.1–2: cards are registered to named staff, and a lost card is
    // reported to (and stopped by) the security manager.
    (R::SecurityManager, A::ManageCards, Unit),
    (R::SecurityChiefManager, A::ManageCards, Ward),
    // K10.1, K33.1.6: anyone reports, 指定管理者 staff included (they hold
    // the implicit 職員等 role in their unit). Auditors only read.
    (R::Staff, A::ReportIncident, Unit),
    (R::Staff, A::ReadIncidents, Unit),
    (R::ExternalAuditor, A::ReadIncidents, Ward),
    // K10.2–3: the chain reads its reports; the manager sees their units'
    // reports, the ward-wide roles all of them.
    (R::SecurityManager, A::ViewIncidents, Unit),
    (R::SecurityChiefManager, A::ViewIncidents, Ward),
    (R::SecurityDirector, A::ViewIncidents, Ward),
    (R::Cio, A::ViewIncidents, Ward),
    (R::ExternalAuditor, A::ViewIncidents, Ward),
    (R::SecurityManager, A::HandleIncidents, Unit),
    (R::SecurityChiefManager, A::HandleIncidents, Ward),
    (R::SecurityDirector, A::HandleIncidents, Ward),
    (R::Cio, A::HandleIncidents, Ward),
    // K27.1.2 ただし書き: an operator's emergency cut or stop, reported afterwards.
    (R::Operator, A::ReportEmergencyAction, Ward),
    // K16.4: the manager keeps failure records; operators keep them for
    // the systems they run (SPEC §1 users).
    (R::SecurityManager, A::RecordFailures, Unit),
    (R::SecurityChiefManager, A::RecordFailures, Ward),
    (R::Operator, A::RecordFailures, Unit),
    (R::SecurityManager, A::ViewFailureRecords, Unit),
    (R::Operator, A::ViewFailureRecords, Unit),
    (R::SecurityChiefManager, A::ViewFailureRecords, Ward),
    (R::SecurityDirector, A::ViewFailureRecords, Ward),
    (R::Cio, A::ViewFailureRecords, Ward),
    (R::ExternalAuditor, A::ViewFailureRecords, Ward),
    // K26: the manager writes the procedures of their systems.
    (R::SecurityManager, A::ManageFailureProcedures, Unit),
    (R::SecurityChiefManager, A::ManageFailureProcedures, Ward),
    (R::Staff, A::ViewFailureProcedures, Ward),
    (R::ExternalAuditor, A::ViewFailureProcedures, Ward),
    // K32.2: the セキュリティ統括者 orders external audits and follows up
    // their findings; the CIO, the 総括管理者 and the auditors read them.
    // Owners (any member of staff) write the follow-up of their findings.
    (R::SecurityDirector, A::ViewAudits, Ward),
    (R::SecurityDirector, A::ManageAudits, Ward),
    (R::SecurityChiefManager, A::ViewAudits, Ward),
    (R::Cio, A::ViewAudits, Ward),
    (R::ExternalAuditor, A::ViewAudits, Ward),
    (R::Staff, A::ReadFindings, Unit),
    (R::SecurityDirector, A::ReadFindings, Ward),
    (R::SecurityChiefManager, A::ReadFindings, Ward),
    (R::Cio, A::ReadFindings, Ward),
    (R::ExternalAuditor, A::ReadFindings, Ward),
    (R::Staff, A::FollowUpFindings, Unit),
    (R::SecurityDirector, A::FollowUpFindings, Ward),
    // K32.3–4: the 統括者 compiles the report for the CIO, who reports it to
    // the 情報化推進本部; the 総括管理者 prepares it, auditors may read it.
    (R::Cio, A::ViewComplianceReport, Ward),
    (R::SecurityDirector, A::ViewComplianceReport, Ward),
    (R::SecurityChiefManager, A::ViewComplianceReport, Ward),
    (R::ExternalAuditor, A::ViewComplianceReport, Ward),
    // Issue 7 point 9: the compliance dashboard is for the CIO and the
    // セキュリティ統括者 (K8.1.1–2), and the セキュリティ総括管理者 who assists
    // them and keeps Mamori (K8.1.4); auditors read it (K32.2). Those three
    // may also order a run.
    (R::Cio, A::ViewCompliance, Ward),
    (R::SecurityDirector, A::ViewCompliance, Ward),
    (R::SecurityChiefManager, A::ViewCompliance, Ward),
    (R::ExternalAuditor, A::ViewCompliance, Ward),
    (R::Cio, A::RunChecks, Ward),
    (R::SecurityDirector, A::RunChecks, Ward),
    (R::SecurityChiefManager, A::RunChecks, Ward),
    // K9.1: the セキュリティ統括者 has training held for all staff, assisted
    // by the セキュリティ総括管理者; a セキュリティ管理者 has their staff
    // understand and practise the measures (K8.1.3.キ), in their units.
    (R::SecurityDirector, A::ManageTraining, Ward),
    (R::SecurityChiefManager, A::ManageTraining, Ward),
    (R::SecurityManager, A::ManageTraining, Unit),
    // K9.3: everyone takes part.
    (R::Staff, A::AttendTraining, Unit),
    (R::SecurityManager, A::ViewTrainingRecords, Unit),
    (R::PromotionLeader, A::ViewTrainingRecords, Unit),
    (R::SecurityChiefManager, A::ViewTrainingRecords, Ward),
    (R::SecurityDirector, A::ViewTrainingRecords, Ward),
    (R::Cio, A::ViewTrainingRecords, Ward),
    (R::ExternalAuditor, A::ViewTrainingRecords, Ward),
    // K9.2: the manager instructs the 情報化推進リーダー, who acknowledges.
    (R::SecurityManager, A::InstructPromotionLeaders, Unit),
    (R::PromotionLeader, A::AcknowledgeInstructions, Unit),
    // SPEC §3.9: the catalog is read by everyone, auditors included. Y10 and
    // K34 name no reviewer; the セキュリティ統括者 oversees the measures
    // (Y4.2) and the CIO is responsible for all of it (Y4.1, K35), so the
    // two record reviews and the versions they produce.
    (R::Staff, A::ViewCatalog, Ward),
    (R::ExternalAuditor, A::ViewCatalog, Ward),
    (R::SecurityDirector, A::RecordPolicyReview, Ward),
    (R::Cio, A::RecordPolicyReview, Ward),
    // K32.1, K29: the セキュリティ統括者 orders self-inspections and receives
    // them; each セキュリティ管理者 answers for their department; the
    // compilation goes to the CIO (K32.3). Auditors read (K32.2).
    (R::SecurityDirector, A::ManageInspections, Ward),
    (R::SecurityManager, A::AnswerInspections, Unit),
    (R::SecurityManager, A::ViewInspections, Unit),
    (R::SecurityChiefManager, A::ViewInspections, Ward),
    (R::SecurityDirector, A::ViewInspections, Ward),
    (R::Cio, A::ViewInspections, Ward),
    (R::ExternalAuditor, A::ViewInspections, Ward),
];

/// The widest scope in which `role` may perform `action`, if at all.
pub fn scope_for(role: Role, action: Action) -> Option<Scope> {
    TABLE
        .iter()
        .filter(|(r, a, _)| *r == role && *a == action)
        .map(|(_, _, s)| *s)
        .max()
}

/// Which roles an assigner holding `assigner` may hand out (K8.1.3.f names
/// operators, K30.2 designated viewers; the ward-wide roles come from the
/// セキュリティ総括管理者 as Mamori's own security manager).
pub fn may_assign(assigner: Role, role: Role) -> bool {
    match assigner {
        Role::SecurityChiefManager => true,
        Role::SecurityManager => matches!(
            role,
            Role::PromotionLeader | Role::Operator | Role::DesignatedViewer | Role::Staff
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auditors_never_change_anything() {
        for a in Action::ALL {
            let writes = !matches!(
                a,
                A::ViewOrg
                    | A::ViewPeople
                    | A::ViewRecords
                    | A::ViewSystems
                    | A::UseOwnAccount
                    | A::AuditLedger
                    | A::AnalyzeLedger
                    | A::ViewAccess
                    | A::ReadIncidents
                    | A::ViewIncidents
                    | A::ViewFailureRecords
                    | A::ViewFailureProcedures
                    | A::ViewAudits
                    | A::ReadFindings
                    | A::ViewComplianceReport
                    | A::ViewCompliance
                    | A::ViewTrainingRecords
                    | A::ViewCatalog
                    | A::ViewInspections
            );
            if writes {
                assert_eq!(scope_for(R::ExternalAuditor, a), None, "{a:?}");
            }
        }
    }

    #[test]
    fn k32_2_only_the_director_orders_audits_and_auditors_only_read() {
        assert_eq!(scope_for(R::SecurityDirector, A::ManageAudits), Some(Ward));
        for r in Role::ALL {
            if r != R::SecurityDirector {
                assert_eq!(scope_for(r, A::ManageAudits), None, "{r:?}");
            }
        }
        assert_eq!(scope_for(R::ExternalAuditor, A::ViewAudits), Some(Ward));
        assert_eq!(scope_for(R::ExternalAuditor, A::FollowUpFindings), None);
        assert_eq!(
            scope_for(R::ExternalAuditor, A::ViewComplianceReport),
            Some(Ward)
        );
        assert_eq!(scope_for(R::Staff, A::ViewComplianceReport), None);
    }

    #[test]
    fn staff_cannot_administer() {
        assert_eq!(scope_for(R::Staff, A::ManageAccounts), None);
        assert_eq!(scope_for(R::Staff, A::ViewPeople), None);
        assert_eq!(scope_for(R::SecurityManager, A::ManageAccounts), Some(Unit));
        assert_eq!(
            scope_for(R::SecurityChiefManager, A::ManageAccounts),
            Some(Ward)
        );
    }

    #[test]
    fn managers_assign_only_unit_roles() {
        assert!(may_assign(R::SecurityManager, R::Operator));
        assert!(!may_assign(R::SecurityManager, R::SecurityManager));
        assert!(!may_assign(R::SecurityManager, R::Cio));
        assert!(may_assign(R::SecurityChiefManager, R::Cio));
        assert!(!may_assign(R::Staff, R::Operator));
    }

    #[test]
    fn k10_1_everyone_reports_and_the_chain_handles() {
        assert_eq!(scope_for(R::Staff, A::ReportIncident), Some(Unit));
        assert_eq!(scope_for(R::Staff, A::ViewIncidents), None);
        assert_eq!(
            scope_for(R::SecurityManager, A::HandleIncidents),
            Some(Unit)
        );
        assert_eq!(scope_for(R::Cio, A::HandleIncidents), Some(Ward));
        assert_eq!(scope_for(R::ExternalAuditor, A::HandleIncidents), None);
        assert_eq!(scope_for(R::Operator, A::ReportEmergencyAction), Some(Ward));
    }

    #[test]
    fn k32_1_director_orders_managers_answer() {
        assert_eq!(
            scope_for(R::SecurityDirector, A::ManageInspections),
            Some(Ward)
        );
        assert_eq!(scope_for(R::SecurityManager, A::ManageInspections), None);
        assert_eq!(
            scope_for(R::SecurityManager, A::AnswerInspections),
            Some(Unit)
        );
        assert_eq!(scope_for(R::SecurityDirector, A::AnswerInspections), None);
        assert_eq!(scope_for(R::Staff, A::ViewInspections), None);
        assert_eq!(scope_for(R::Cio, A::ViewInspections), Some(Ward));
    }
}
