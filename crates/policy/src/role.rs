//! Policy roles (要綱第4条, 基準第8条) and who reports to whom.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role a person holds, scoped to an org unit or ward-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 最高情報統括責任者 (Y4.1, K8.1.1): the 副区長; ward-wide.
    Cio,
    /// セキュリティ統括者 (Y4.2, K8.1.2): the 経営企画部長; ward-wide.
    SecurityDirector,
    /// セキュリティ総括管理者 (Y4.3, K8.1.4): the 情報政策課長; security manager of
    /// ward-wide systems, Mamori itself included.
    SecurityChiefManager,
    /// セキュリティ管理者 (Y4.4, K8.1.3): each 課長 / 学校長, for their unit.
    SecurityManager,
    /// 情報化推進リーダー (K2.1.1, K8.1.5): assists the manager inside a 課.
    PromotionLeader,
    /// 運用管理者 (K2.1.2, K18): operates a system under its manager.
    Operator,
    /// 指名閲覧者 (K30): views access records as the manager instructs.
    DesignatedViewer,
    /// 外部監査人 (K32.2): read-only, time-limited access for an audit.
    ExternalAuditor,
    /// 職員等 (Y2.1.10, K8.1.6): every member of staff, in their own unit.
    Staff,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Cio,
        Role::SecurityDirector,
        Role::SecurityChiefManager,
        Role::SecurityManager,
        Role::PromotionLeader,
        Role::Operator,
        Role::DesignatedViewer,
        Role::ExternalAuditor,
        Role::Staff,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Cio => "cio",
            Role::SecurityDirector => "security_director",
            Role::SecurityChiefManager => "security_chief_manager",
            Role::SecurityManager => "security_manager",
            Role::PromotionLeader => "promotion_leader",
            Role::Operator => "operator",
            Role::DesignatedViewer => "designated_viewer",
            Role::ExternalAuditor => "external_auditor",
            Role::Staff => "staff",
        }
    }

    /// The title as the policy writes it.
    pub fn ja(self) -> &'static str {
        match self {
            Role::Cio => "最高情報統括責任者",
            Role::SecurityDirector => "セキュリティ統括者",
            Role::SecurityChiefManager => "セキュリティ総括管理者",
            Role::SecurityManager => "セキュリティ管理者",
            Role::PromotionLeader => "情報化推進リーダー",
            Role::Operator => "運用管理者",
            Role::DesignatedViewer => "指名閲覧者",
            Role::ExternalAuditor => "外部監査人",
            Role::Staff => "職員等",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            Role::Cio => "Chief Information Officer",
            Role::SecurityDirector => "Security Director",
            Role::SecurityChiefManager => "Chief Security Manager",
            Role::SecurityManager => "Security Manager",
            Role::PromotionLeader => "IT Promotion Leader",
            Role::Operator => "Operator",
            Role::DesignatedViewer => "Designated Record Viewer",
            Role::ExternalAuditor => "External Auditor",
            Role::Staff => "Staff",
        }
    }

    /// The clause that establishes the role.
    pub fn clause(self) -> &'static str {
        match self {
            Role::Cio => "Y4.1",
            Role::SecurityDirector => "Y4.2",
            Role::SecurityChiefManager => "Y4.3",
            Role::SecurityManager => "Y4.4",
            Role::PromotionLeader => "K8.1.5",
            Role::Operator => "K2.1.2",
            Role::DesignatedViewer => "K30.2",
            Role::ExternalAuditor => "K32.2",
            Role::Staff => "K8.1.6",
        }
    }

    /// Ward-wide roles are held without an org unit; the others are scoped
    /// to one (an operator may instead be scoped to a system).
    pub fn is_ward_wide(self) -> bool {
        matches!(
            self,
            Role::Cio | Role::SecurityDirector | Role::SecurityChiefManager | Role::ExternalAuditor
        )
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.code() == s || r.ja() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Steps of the reporting chain of K10.1–3: staff report to their security
/// manager, who reports to the セキュリティ統括者, who reports to the
/// 最高情報統括責任者.
pub const REPORTING_CHAIN: [Role; 3] = [Role::SecurityManager, Role::SecurityDirector, Role::Cio];

/// Who approves a request made under a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approver {
    /// The security manager of the requester's unit (or of the asset).
    UnitSecurityManager,
    /// A ward-wide role.
    Ward(Role),
}

/// Readings of ambiguous titles (SPEC §2). K13.3, K24.1 and K28 name a
/// 「セキュリティ総括者」 the policy never defines; the ward chooses who that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readings {
    pub sokatsusha: Role,
}

impl Default for Readings {
    fn default() -> Self {
        Readings {
            sokatsusha: Role::SecurityChiefManager,
        }
    }
}

/// The approver for a request under `clause` (SPEC §3.7). `None` for clauses
/// that carry no approval.
pub fn approver_for(clause: &str, readings: &Readings) -> Option<Approver> {
    let article = clause.split('.').next()?;
    match (article, clause) {
        // 「セキュリティ総括者」 as read in SPEC §2.
        (_, "K13.3") | ("K24", _) | ("K28", _) => Some(Approver::Ward(readings.sokatsusha)),
        // 開発前のセキュリティ統括者への協議.
        ("K20", _) => Some(Approver::Ward(Role::SecurityDirector)),
        // Media copy/take-out, device change, software install, managed-area
        // entry, admin delegation, access grants: the unit's manager.
        (_, "K12.1.3") | (_, "K13.2") | ("K14", _) | (_, "K5.1") | ("K18", _) | (_, "K3.2.1") => {
            Some(Approver::UnitSecurityManager)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_japanese_names_parse_back() {
        for r in Role::ALL {
            assert_eq!(r.code().parse::<Role>(), Ok(r));
            assert_eq!(r.ja().parse::<Role>(), Ok(r));
        }
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn approvers_follow_the_clauses() {
        let r = Readings::default();
        let check = |clause: &str, expected: Option<Approver>| {
            assert_eq!(approver_for(clause, &r), expected, "{clause}")
        };
        check("K13.3", Some(Approver::Ward(Role::SecurityChiefManager)));
        check("K20", Some(Approver::Ward(Role::SecurityDirector)));
        check("K12.1.3", Some(Approver::UnitSecurityManager));
        check("K14.1.1", Some(Approver::UnitSecurityManager));
        check("K3.2.1", Some(Approver::UnitSecurityManager));
        check("K9.1", None);
        let other = Readings {
            sokatsusha: Role::SecurityDirector,
        };
        assert_eq!(
            approver_for("K13.3", &other),
            Some(Approver::Ward(Role::SecurityDirector))
        );
    }
}
