//! 情報資産へのアクセス判定 — the access-decision engine (K3, K12.1.2, K17, K18).
//!
//! An in-memory model of the ward (org units, people, assets, grants,
//! denies, administrators) that answers "may this person do this to this
//! asset, here and now?" with the reason and the clauses behind it, and is
//! updated one change at a time: adding, removing or replacing a grant, a
//! status change, a transfer or a reclassification touches only the entries
//! and index rows it concerns, never the whole model.
//!
//! # 判定規則 / Decision rules
//!
//! The rules are tried in this order; the first that applies decides.
//! 上から順に評価し、最初に当てはまった規則で決まる。
//!
//! 0. 知らない職員・情報資産は拒否ではなく誤りとする。
//!    An unknown person or asset is an error ([`DecideError`]), never a
//!    silent deny, so a caller's mistake cannot pass for a policy answer.
//! 1. **K17.3** 無効・退職・ロック中の職員は、何があっても許可しない。
//!    A disabled, retired or locked person is never allowed.
//! 2. **明示的拒否 (K12.1.2, K17.2)** 本人、または本人の所属を含む組織に対する
//!    有効な拒否は、すべての許可に優先する(セキュリティ管理者の権限も含む)。
//!    An explicit deny, in its validity period, for the person or for an
//!    org unit that contains the person's unit overrides every allow,
//!    including the administrator's.
//! 3. **K18** 管理者権限(administer)は、その情報資産のセキュリティ管理者と、
//!    指名された運用管理者だけが持つ。付与(grant)では与えられない。
//!    Administer is held by the asset's security manager and by the
//!    operators (運用管理者) named for it, and by no one else; a grant cannot
//!    confer it (such a grant is refused when it is added).
//! 4. **K3.1.2 一般情報** は、所管課とその下位組織の職員が閲覧(read)できる。
//!    書込み・持出しには付与が要る。
//!    一般情報 can be read by the staff of the owning org unit and of the
//!    units below it; writing and exporting need a grant.
//! 5. **付与 (K3.2.1, K17.2)** 本人、または本人の所属を含む組織への付与で、
//!    その操作を含み、有効期間内で、条件(時間帯・曜日・端末のネットワーク区分・
//!    管理区域)をすべて満たすものがあれば許可する。秘密情報(K3.1.1)は
//!    この経路でしか許可しない(K3.2.1, K12.1.2)。秘密情報の持出し(export)は
//!    export を明示した付与が要り、他の操作からは導かれない(K12.1.3)。
//!    A grant to the person, or to an org unit that contains the person's
//!    unit, allows when it lists the action, is within its validity period
//!    and all of its conditions hold. 秘密情報 is reached only this way;
//!    exporting 秘密情報 needs a grant that lists export itself: no other
//!    action implies it.
//! 6. それ以外は拒否。理由は最も具体的なものを返す(条件外の付与がある、
//!    秘密情報の持出しに export の付与がない、秘密情報に付与がない、付与がない)。
//!    Otherwise deny, with the most specific reason: a grant exists but is
//!    not in effect; no export grant for a secret; no grant for a secret; no
//!    grant.
//!
//! # 条件 / Conditions
//!
//! - 有効期間は `[valid_from, valid_until)`、秒単位。
//!   Validity is `[valid_from, valid_until)`, to the second.
//! - 時間帯は日本時間 (JST, UTC+9) の `[start, end)`。`end < start` は日付を
//!   またぐ (22:00–06:00)。複数の時間帯はいずれかに入ればよい。
//!   Time-of-day windows are `[start, end)` in JST; `end < start` wraps past
//!   midnight; any one window suffices.
//! - 曜日は、その時点の日本時間の日付の曜日。列挙のいずれかに当たればよい。
//!   The weekday is that of the moment's JST date; any listed day suffices.
//! - 端末のネットワーク区分・管理区域は、要求に示されたものが列挙に含まれる
//!   こと。要求に示されなければ、その条件は満たされない。
//!   The terminal's zone and the managed area must be among those listed; a
//!   request that does not state them does not meet such a condition.
//! - 種類の異なる条件はすべて満たす必要がある。空の条件は「制限なし」。
//!   Conditions of different kinds must all hold; an empty one is no limit.
//!
//! # 組織単位の付与 / Org-unit grants
//!
//! K17.2 registers users one by one; an org unit may be the subject only
//! where the work or the system leaves no other way, and then the reason is
//! recorded: a grant to an org unit without a reason is refused. A grant to
//! a unit reaches the staff of that unit and of the units below it.
//!
//! # 異動・退職 / Transfers and retirement
//!
//! K17.3: a transfer to another unit and retirement end the person's own
//! grants; [`AccessEngine::transfer_person`] and
//! [`AccessEngine::set_person_status`] return the grants they ended so the
//! caller can record them. Appointments as security manager or operator are
//! roles, ended by whoever ends the role.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::macros::offset;
use time::{OffsetDateTime, Time, UtcOffset, Weekday};

/// 日本標準時: the ward's clock for time-of-day windows and weekdays.
pub const JST: UtcOffset = offset!(+9);

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id!(/// A person (職員等).
    PersonId);
id!(/// An org unit (部, 課, 係 …).
    OrgUnitId);
id!(/// An information asset (情報資産): a system or a data set it holds.
    AssetId);
id!(/// An access grant (アクセス権限の付与).
    GrantId);
id!(/// An explicit deny (明示的な拒否).
    DenyId);
id!(/// A managed area (管理区域, K4–K5) a terminal stands in.
    AreaId);

/// What a request wants to do with an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// 閲覧.
    Read,
    /// 更新.
    Write,
    /// 持出し・複製 (K12.1.3).
    Export,
    /// 管理者権限 (K18).
    Administer,
}

impl Action {
    /// Every action, in code order.
    pub const ALL: [Action; 4] = [
        Action::Read,
        Action::Write,
        Action::Export,
        Action::Administer,
    ];

    /// The stable code: `read`, `write`, `export`, `administer`.
    pub const fn code(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Export => "export",
            Action::Administer => "administer",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Action {
    type Err = DecideError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.code() == s)
            .ok_or_else(|| DecideError::UnknownAction(s.to_owned()))
    }
}

/// A set of [`Action`]s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ActionSet(u8);

impl ActionSet {
    /// No action.
    pub const EMPTY: ActionSet = ActionSet(0);

    /// The set of `actions`.
    pub const fn of(actions: &[Action]) -> ActionSet {
        let mut bits = 0;
        let mut i = 0;
        while i < actions.len() {
            bits |= actions[i].bit();
            i += 1;
        }
        ActionSet(bits)
    }

    /// Whether `action` is in the set.
    pub const fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Adds `action`.
    pub fn insert(&mut self, action: Action) {
        self.0 |= action.bit();
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in the set, in code order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        let mut set = ActionSet::EMPTY;
        for a in iter {
            set.insert(a);
        }
        set
    }
}

impl fmt::Debug for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// A person's standing for access (K17.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonStatus {
    /// 在職・有効.
    Active,
    /// 無効 (停止中, or not yet in service).
    Disabled,
    /// 退職.
    Retired,
    /// ロック中.
    Locked,
}

impl PersonStatus {
    /// The stable code: `active`, `disabled`, `retired`, `locked`.
    pub const fn code(self) -> &'static str {
        match self {
            PersonStatus::Active => "active",
            PersonStatus::Disabled => "disabled",
            PersonStatus::Retired => "retired",
            PersonStatus::Locked => "locked",
        }
    }
}

/// 三層の対策: the network zone of an asset or of a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkZone {
    /// マイナンバー利用事務系.
    MyNumber,
    /// LGWAN接続系.
    Lgwan,
    /// インターネット接続系.
    Internet,
}

impl NetworkZone {
    /// Every zone.
    pub const ALL: [NetworkZone; 3] = [
        NetworkZone::MyNumber,
        NetworkZone::Lgwan,
        NetworkZone::Internet,
    ];

    /// The stable code: `my_number`, `lgwan`, `internet`.
    pub const fn code(self) -> &'static str {
        match self {
            NetworkZone::MyNumber => "my_number",
            NetworkZone::Lgwan => "lgwan",
            NetworkZone::Internet => "internet",
        }
    }

    /// The zone's Japanese name.
    pub const fn ja(self) -> &'static str {
        match self {
            NetworkZone::MyNumber => "マイナンバー利用事務系",
            NetworkZone::Lgwan => "LGWAN接続系",
            NetworkZone::Internet => "インターネット接続系",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl FromStr for NetworkZone {
    type Err = DecideError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetworkZone::ALL
            .into_iter()
            .find(|z| z.code() == s)
            .ok_or_else(|| DecideError::UnknownZone(s.to_owned()))
    }
}

/// Why information is 秘密情報 (K3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretGround {
    /// K3.1.1.a: 秘密文書 under the ward's 行政文書管理規則 第65条.
    SecretDocument,
    /// K3.1.1.b: information on running a system that must stay secret
    /// for its security.
    SystemOperation,
}

impl SecretGround {
    /// The clause that makes it secret.
    pub const fn clause(self) -> &'static str {
        match self {
            SecretGround::SecretDocument => "K3.1.1.a",
            SecretGround::SystemOperation => "K3.1.1.b",
        }
    }
}

/// 情報の分類 (K3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// 秘密情報 (K3.1.1) with its ground.
    Secret(SecretGround),
    /// 一般情報 (K3.1.2).
    General,
}

impl Classification {
    /// Whether this is 秘密情報.
    pub const fn is_secret(self) -> bool {
        matches!(self, Classification::Secret(_))
    }
}

/// An org unit and its place in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgUnit {
    /// The unit.
    pub id: OrgUnitId,
    /// The unit above it; `None` for the root (区).
    pub parent: Option<OrgUnitId>,
}

/// A person as far as access is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The person.
    pub id: PersonId,
    /// 所属; `None` for someone without one (no unit-based access).
    pub org_unit: Option<OrgUnitId>,
    /// K17.3 standing.
    pub status: PersonStatus,
}

/// An information asset (Y5, K3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The asset.
    pub id: AssetId,
    /// 所管課: the unit that made the information (K3.1).
    pub owner: OrgUnitId,
    /// 秘密情報 or 一般情報.
    pub classification: Classification,
    /// The zone the asset lives in.
    pub zone: NetworkZone,
    /// Whether it holds personal information (K3.2.2).
    pub personal_info: bool,
    /// セキュリティ管理者: holds the admin rights (K18).
    pub security_manager: Option<PersonId>,
    /// 運用管理者 named to act for the manager (K18).
    pub operators: Vec<PersonId>,
}

/// Who a grant or a deny is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// One person (the rule, K17.2).
    Person(PersonId),
    /// An org unit and the units below it.
    OrgUnit(OrgUnitId),
}

/// A time-of-day window in JST, `[start, end)`; `end < start` wraps past
/// midnight. Compared to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// First second inside.
    pub start: Time,
    /// First second outside.
    pub end: Time,
}

/// Conditions a grant holds under. Each kind left empty is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conditions {
    /// Time-of-day windows (JST); any one suffices.
    pub windows: Vec<TimeWindow>,
    /// Weekdays (of the JST date); any one suffices.
    pub weekdays: Vec<Weekday>,
    /// Zones the terminal must be in; any one suffices.
    pub zones: Vec<NetworkZone>,
    /// Managed areas the terminal must be in; any one suffices.
    pub areas: Vec<AreaId>,
}

/// アクセス権限 (K3.2.1, K17.2): a subject may do some actions to an asset
/// within a period and under conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The grant.
    pub id: GrantId,
    /// Usually a person; an org unit only with [`Grant::reason`].
    pub subject: Subject,
    /// The asset.
    pub asset: AssetId,
    /// What it allows; never [`Action::Administer`] (K18).
    pub actions: ActionSet,
    /// Start of validity (inclusive); `None` = always was.
    pub valid_from: Option<OffsetDateTime>,
    /// End of validity (exclusive); `None` = until removed.
    pub valid_until: Option<OffsetDateTime>,
    /// Conditions on the request's time and place.
    pub conditions: Conditions,
    /// Why an org unit rather than persons (K17.2 やむを得ない理由).
    pub reason: Option<String>,
}

/// An explicit deny: overrides every allow for its subject, asset and
/// actions within its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// The deny.
    pub id: DenyId,
    /// A person, or an org unit and the units below it.
    pub subject: Subject,
    /// The asset.
    pub asset: AssetId,
    /// The actions denied (administer included).
    pub actions: ActionSet,
    /// Start (inclusive); `None` = always was.
    pub valid_from: Option<OffsetDateTime>,
    /// End (exclusive); `None` = until removed.
    pub valid_until: Option<OffsetDateTime>,
}

/// Where and when a request is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The moment; windows and weekdays are read in JST.
    pub at: OffsetDateTime,
    /// The terminal's network zone, if known.
    pub zone: Option<NetworkZone>,
    /// The managed area the terminal stands in, if any.
    pub area: Option<AreaId>,
}

/// One access question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Who asks.
    pub subject: PersonId,
    /// What they want to do.
    pub action: Action,
    /// To what.
    pub asset: AssetId,
    /// Where and when.
    pub context: Context,
}

/// Why a request is allowed or denied. [`Reason::code`] is the stable
/// message key; [`Reason::clauses`] the clauses behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// 一般情報, read by staff of the owning unit or below (K3.1.2).
    GeneralOwnUnit,
    /// This grant applies (K3.2.1, K17.2).
    Granted(GrantId),
    /// The asset's security manager (K18).
    SecurityManager,
    /// A named operator of the asset (K18).
    DelegatedOperator,
    /// The person is not active (K17.3).
    PersonInactive(PersonStatus),
    /// This explicit deny applies.
    ExplicitDeny(DenyId),
    /// Administer asked by someone who is neither manager nor operator (K18).
    NotAdministrator,
    /// A grant for the action exists but is outside its validity period or
    /// its conditions do not hold (the lowest such grant).
    GrantNotInEffect(GrantId),
    /// Export of 秘密情報 without a grant listing export (K12.1.3).
    SecretExportNeedsExportGrant,
    /// 秘密情報 without a grant (K3.2.1, K12.1.2).
    SecretNeedsGrant,
    /// No rule allows it (K12.1.2).
    NoGrant,
}

/// Every reason code, for catalog checks.
pub const ALL_REASON_CODES: [&str; 13] = [
    "access.allow.general_own_unit",
    "access.allow.grant",
    "access.allow.security_manager",
    "access.allow.delegated_operator",
    "access.deny.person_disabled",
    "access.deny.person_retired",
    "access.deny.person_locked",
    "access.deny.explicit",
    "access.deny.not_administrator",
    "access.deny.grant_not_in_effect",
    "access.deny.secret_export_needs_export_grant",
    "access.deny.secret_needs_grant",
    "access.deny.no_grant",
];

impl Reason {
    /// Whether the reason allows.
    pub const fn allows(self) -> bool {
        matches!(
            self,
            Reason::GeneralOwnUnit
                | Reason::Granted(_)
                | Reason::SecurityManager
                | Reason::DelegatedOperator
        )
    }

    /// The stable code, e.g. `access.deny.secret_needs_grant`.
    pub const fn code(self) -> &'static str {
        match self {
            Reason::GeneralOwnUnit => "access.allow.general_own_unit",
            Reason::Granted(_) => "access.allow.grant",
            Reason::SecurityManager => "access.allow.security_manager",
            Reason::DelegatedOperator => "access.allow.delegated_operator",
            Reason::PersonInactive(PersonStatus::Disabled | PersonStatus::Active) => {
                "access.deny.person_disabled"
            }
            Reason::PersonInactive(PersonStatus::Retired) => "access.deny.person_retired",
            Reason::PersonInactive(PersonStatus::Locked) => "access.deny.person_locked",
            Reason::ExplicitDeny(_) => "access.deny.explicit",
            Reason::NotAdministrator => "access.deny.not_administrator",
            Reason::GrantNotInEffect(_) => "access.deny.grant_not_in_effect",
            Reason::SecretExportNeedsExportGrant => "access.deny.secret_export_needs_export_grant",
            Reason::SecretNeedsGrant => "access.deny.secret_needs_grant",
            Reason::NoGrant => "access.deny.no_grant",
        }
    }

    /// The clauses the rule serves (SPEC §2 ids).
    pub const fn clauses(self) -> &'static [&'static str] {
        match self {
            Reason::GeneralOwnUnit => &["K3.1.2", "K17.2"],
            Reason::Granted(_) | Reason::GrantNotInEffect(_) => &["K3.2.1", "K17.2"],
            Reason::SecurityManager | Reason::DelegatedOperator | Reason::NotAdministrator => {
                &["K18"]
            }
            Reason::PersonInactive(_) => &["K17.3"],
            Reason::ExplicitDeny(_) | Reason::NoGrant => &["K12.1.2", "K17.2"],
            Reason::SecretExportNeedsExportGrant => &["K3.2.1", "K12.1.3"],
            Reason::SecretNeedsGrant => &["K3.2.1", "K12.1.2"],
        }
    }
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allowed or not.
    pub allow: bool,
    /// The rule that decided.
    pub reason: Reason,
    /// The clauses behind the rule.
    pub clauses: &'static [&'static str],
}

impl From<Reason> for Decision {
    fn from(reason: Reason) -> Self {
        Decision {
            allow: reason.allows(),
            reason,
            clauses: reason.clauses(),
        }
    }
}

/// A question the engine cannot answer: the caller's mistake, not a deny.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No such person in the model.
    #[error("subject: unknown person {0}")]
    UnknownPerson(PersonId),
    /// No such asset in the model.
    #[error("asset: unknown asset {0}")]
    UnknownAsset(AssetId),
    /// Not one of `read`, `write`, `export`, `administer`.
    #[error("action: unknown action {0:?}")]
    UnknownAction(String),
    /// Not one of `my_number`, `lgwan`, `internet`.
    #[error("context.zone: unknown zone {0:?}")]
    UnknownZone(String),
    /// The moment has no JST date within the supported years.
    #[error("context.time: out of range")]
    TimeOutOfRange,
}

/// A change the model refuses; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No such person.
    #[error("unknown person {0}")]
    UnknownPerson(PersonId),
    /// No such org unit.
    #[error("unknown org unit {0}")]
    UnknownOrgUnit(OrgUnitId),
    /// No such asset.
    #[error("unknown asset {0}")]
    UnknownAsset(AssetId),
    /// No such grant.
    #[error("unknown grant {0}")]
    UnknownGrant(GrantId),
    /// No such deny.
    #[error("unknown deny {0}")]
    UnknownDeny(DenyId),
    /// The id is taken.
    #[error("{kind} {id} already exists")]
    Duplicate {
        /// `person`, `asset`, `grant` or `deny`.
        kind: &'static str,
        /// The id.
        id: i64,
    },
    /// Making this the parent would put the unit below itself.
    #[error("org unit {0}: parent would make a cycle")]
    OrgCycle(OrgUnitId),
    /// A field breaks a rule.
    #[error("{field}: {rule}")]
    Invalid {
        /// The field, e.g. `grant.reason`.
        field: &'static str,
        /// The rule, with its clause where there is one.
        rule: &'static str,
    },
}

/// What [`AccessEngine::who_can_access`] and
/// [`AccessEngine::what_can_access`] evaluate against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// Exactly as [`AccessEngine::decide`] would answer in this context.
    At(Context),
    /// At this moment, taking every grant's conditions (windows, weekdays,
    /// zones, areas) as met: who could get in at some hour, from some
    /// terminal. Validity periods, statuses and denies still count.
    AnyConditions(OffsetDateTime),
}

/// A person and what they may do to an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonAccess {
    /// The person.
    pub person: PersonId,
    /// The allowed actions (never empty).
    pub actions: ActionSet,
}

/// An asset and what a person may do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetAccess {
    /// The asset.
    pub asset: AssetId,
    /// The allowed actions (never empty).
    pub actions: ActionSet,
}

/// Counts of what the model holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelStats {
    /// Org units.
    pub org_units: usize,
    /// People.
    pub people: usize,
    /// Assets.
    pub assets: usize,
    /// Grants.
    pub grants: usize,
    /// Denies.
    pub denies: usize,
}

// --- internals -------------------------------------------------------------

/// A multiplicative hasher for integer ids (the rustc "Fx" scheme). Ids come
/// from the ward's own database, not from attackers, so the flooding
/// resistance of SipHash buys nothing and would cost a fifth of a decision.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = self.0.wrapping_add(word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.add(u64::from(*b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.add(i as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[derive(Debug, Clone, Default)]
struct UnitEntry {
    parent: Option<OrgUnitId>,
    children: Vec<OrgUnitId>,
    members: Vec<PersonId>,
    owned_assets: Vec<AssetId>,
    /// This unit, then its parent, … up to the root.
    ancestors: Box<[OrgUnitId]>,
}

#[derive(Debug, Clone)]
struct PersonEntry {
    person: Person,
    /// Assets this person manages or operates (a multiset: one entry per role).
    administers: Vec<AssetId>,
}

#[derive(Debug, Clone)]
struct AssetEntry {
    asset: Asset,
    /// Sorted.
    grants: Vec<GrantId>,
    /// How many of `grants` are to org units: when none, a decision need
    /// not look up the person's units.
    unit_grants: u32,
    /// Sorted.
    denies: Vec<DenyId>,
}

/// Validity and conditions in the form a decision reads.
#[derive(Debug, Clone)]
struct Rule {
    actions: u8,
    from: i64,
    until: i64,
    /// Seconds of the JST day.
    windows: Box<[(u32, u32)]>,
    /// Bit 0 = Monday; 0 = any day.
    weekdays: u8,
    /// [`NetworkZone::bit`]s; 0 = any zone.
    zones: u8,
    /// Empty = anywhere.
    areas: Box<[AreaId]>,
}

impl Rule {
    #[inline]
    fn valid_at(&self, now: i64) -> bool {
        self.from <= now && now < self.until
    }

    #[inline]
    fn conditions_hold(&self, env: &Env) -> bool {
        if env.any_conditions {
            return true;
        }
        let in_window = self.windows.is_empty()
            || self.windows.iter().any(|&(s, e)| {
                if s < e {
                    s <= env.second_of_day && env.second_of_day < e
                } else {
                    env.second_of_day >= s || env.second_of_day < e
                }
            });
        in_window
            && (self.weekdays == 0 || self.weekdays & env.weekday_bit != 0)
            && (self.zones == 0 || self.zones & env.zone_bit != 0)
            && (self.areas.is_empty() || env.area.is_some_and(|a| self.areas.contains(&a)))
    }
}

#[derive(Debug, Clone)]
struct GrantEntry {
    grant: Grant,
    rule: Rule,
}

#[derive(Debug, Clone)]
struct DenyEntry {
    deny: Deny,
    actions: u8,
    from: i64,
    until: i64,
}

/// A request's context, read once per decision.
#[derive(Debug, Clone, Copy)]
struct Env {
    now: i64,
    second_of_day: u32,
    weekday_bit: u8,
    zone_bit: u8,
    area: Option<AreaId>,
    any_conditions: bool,
}

impl Env {
    fn of(context: &Context) -> Result<Env, DecideError> {
        let jst = context
            .at
            .checked_to_offset(JST)
            .ok_or(DecideError::TimeOutOfRange)?;
        let (h, m, s) = jst.time().as_hms();
        Ok(Env {
            now: context.at.unix_timestamp(),
            second_of_day: u32::from(h) * 3600 + u32::from(m) * 60 + u32::from(s),
            weekday_bit: 1 << jst.weekday().number_days_from_monday(),
            zone_bit: context.zone.map_or(0, NetworkZone::bit),
            area: context.area,
            any_conditions: false,
        })
    }

    fn of_query(query: &Query) -> Result<Env, DecideError> {
        match query {
            Query::At(context) => Env::of(context),
            Query::AnyConditions(at) => Ok(Env {
                any_conditions: true,
                ..Env::of(&Context {
                    at: *at,
                    zone: None,
                    area: None,
                })?
            }),
        }
    }
}

fn seconds_of(t: Time) -> u32 {
    let (h, m, s) = t.as_hms();
    u32::from(h) * 3600 + u32::from(m) * 60 + u32::from(s)
}

fn validity(
    from: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    field: &'static str,
) -> Result<(i64, i64), ModelError> {
    let from = from.map_or(i64::MIN, OffsetDateTime::unix_timestamp);
    let until = until.map_or(i64::MAX, OffsetDateTime::unix_timestamp);
    if from >= until {
        return Err(ModelError::Invalid {
            field,
            rule: "valid_from must be before valid_until",
        });
    }
    Ok((from, until))
}

fn insert_sorted<T: Ord>(list: &mut Vec<T>, item: T) {
    if let Err(i) = list.binary_search(&item) {
        list.insert(i, item);
    }
}

fn remove_sorted<T: Ord>(list: &mut Vec<T>, item: &T) {
    if let Ok(i) = list.binary_search(item) {
        list.remove(i);
    }
}

fn remove_one<T: PartialEq>(list: &mut Vec<T>, item: &T) {
    if let Some(i) = list.iter().position(|x| x == item) {
        list.swap_remove(i);
    }
}

/// The access-decision engine: the model and its indexes.
///
/// Indexes kept up to date by every change:
/// - per asset: its grants (sorted), its denies, how many grants go to units;
/// - per (subject, asset): the grants a decision looks at;
/// - per subject: its grants ("what can P access");
/// - per unit: children, members, owned assets, ancestor chain;
/// - per person: the assets they manage or operate.
#[derive(Debug, Clone, Default)]
pub struct AccessEngine {
    units: IdMap<OrgUnitId, UnitEntry>,
    people: IdMap<PersonId, PersonEntry>,
    assets: IdMap<AssetId, AssetEntry>,
    grants: IdMap<GrantId, GrantEntry>,
    denies: IdMap<DenyId, DenyEntry>,
    by_pair: IdMap<(Subject, AssetId), Vec<GrantId>>,
    by_subject: IdMap<Subject, Vec<GrantId>>,
}

impl AccessEngine {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the model at start. Units may come in any order; everything
    /// else must refer to what comes before it in this list of arguments.
    pub fn load(
        units: impl IntoIterator<Item = OrgUnit>,
        people: impl IntoIterator<Item = Person>,
        assets: impl IntoIterator<Item = Asset>,
        grants: impl IntoIterator<Item = Grant>,
        denies: impl IntoIterator<Item = Deny>,
    ) -> Result<Self, ModelError> {
        let mut engine = AccessEngine::new();
        engine.load_units(units)?;
        let (people, assets, grants, denies) = (
            people.into_iter(),
            assets.into_iter(),
            grants.into_iter(),
            denies.into_iter(),
        );
        engine.people.reserve(people.size_hint().0);
        for p in people {
            engine.add_person(p)?;
        }
        engine.assets.reserve(assets.size_hint().0);
        for a in assets {
            engine.add_asset(a)?;
        }
        engine.grants.reserve(grants.size_hint().0);
        engine.by_pair.reserve(grants.size_hint().0);
        for g in grants {
            engine.add_grant(g)?;
        }
        for d in denies {
            engine.add_deny(d)?;
        }
        Ok(engine)
    }

    fn load_units(&mut self, units: impl IntoIterator<Item = OrgUnit>) -> Result<(), ModelError> {
        for u in units {
            if self.units.contains_key(&u.id) {
                return Err(ModelError::Duplicate {
                    kind: "org_unit",
                    id: u.id.0,
                });
            }
            self.units.insert(
                u.id,
                UnitEntry {
                    parent: u.parent,
                    ..UnitEntry::default()
                },
            );
        }
        let mut roots = Vec::new();
        let links: Vec<(OrgUnitId, Option<OrgUnitId>)> =
            self.units.iter().map(|(id, u)| (*id, u.parent)).collect();
        for (id, parent) in links {
            match parent {
                None => roots.push(id),
                Some(p) => match self.units.get_mut(&p) {
                    Some(parent) => parent.children.push(id),
                    None => return Err(ModelError::UnknownOrgUnit(p)),
                },
            }
        }
        let mut reached = 0;
        for root in roots {
            reached += self.recompute_ancestors(root);
        }
        if reached != self.units.len() {
            // Units not reached from a root hang in a cycle.
            let stuck = self
                .units
                .iter()
                .find(|(_, u)| u.ancestors.is_empty())
                .map_or(OrgUnitId(0), |(id, _)| *id);
            return Err(ModelError::OrgCycle(stuck));
        }
        Ok(())
    }

    /// Recomputes the ancestor chains of `top`'s subtree; returns its size.
    fn recompute_ancestors(&mut self, top: OrgUnitId) -> usize {
        let mut stack = vec![top];
        let mut count = 0;
        while let Some(id) = stack.pop() {
            let parent_chain: Vec<OrgUnitId> = self
                .units
                .get(&id)
                .and_then(|u| u.parent)
                .and_then(|p| self.units.get(&p))
                .map_or_else(Vec::new, |p| p.ancestors.to_vec());
            if let Some(u) = self.units.get_mut(&id) {
                let mut chain = Vec::with_capacity(parent_chain.len() + 1);
                chain.push(id);
                chain.extend(parent_chain);
                u.ancestors = chain.into_boxed_slice();
                stack.extend(u.children.iter().copied());
                count += 1;
            }
        }
        count
    }

    /// What the model holds.
    pub fn stats(&self) -> ModelStats {
        ModelStats {
            org_units: self.units.len(),
            people: self.people.len(),
            assets: self.assets.len(),
            grants: self.grants.len(),
            denies: self.denies.len(),
        }
    }

    // --- org units ---------------------------------------------------------

    /// Adds a unit, or moves an existing one under another parent.
    pub fn upsert_org_unit(&mut self, unit: OrgUnit) -> Result<(), ModelError> {
        if let Some(p) = unit.parent {
            let parent = self.units.get(&p).ok_or(ModelError::UnknownOrgUnit(p))?;
            if parent.ancestors.contains(&unit.id) {
                return Err(ModelError::OrgCycle(unit.id));
            }
        }
        let old_parent = match self.units.get(&unit.id) {
            None => {
                self.units.insert(
                    unit.id,
                    UnitEntry {
                        parent: unit.parent,
                        ..UnitEntry::default()
                    },
                );
                None
            }
            Some(u) if u.parent == unit.parent => return Ok(()),
            Some(u) => u.parent,
        };
        if let Some(old) = old_parent.and_then(|p| self.units.get_mut(&p)) {
            remove_one(&mut old.children, &unit.id);
        }
        if let Some(new) = unit.parent.and_then(|p| self.units.get_mut(&p)) {
            new.children.push(unit.id);
        }
        if let Some(u) = self.units.get_mut(&unit.id) {
            u.parent = unit.parent;
        }
        self.recompute_ancestors(unit.id);
        Ok(())
    }

    /// The unit's parent, if the unit is known.
    pub fn org_unit_parent(&self, id: OrgUnitId) -> Option<Option<OrgUnitId>> {
        self.units.get(&id).map(|u| u.parent)
    }

    // --- people ------------------------------------------------------------

    /// Adds a person.
    pub fn add_person(&mut self, person: Person) -> Result<(), ModelError> {
        if self.people.contains_key(&person.id) {
            return Err(ModelError::Duplicate {
                kind: "person",
                id: person.id.0,
            });
        }
        if let Some(u) = person.org_unit {
            self.units
                .get_mut(&u)
                .ok_or(ModelError::UnknownOrgUnit(u))?
                .members
                .push(person.id);
        }
        self.people.insert(
            person.id,
            PersonEntry {
                person,
                administers: Vec::new(),
            },
        );
        Ok(())
    }

    /// The person, if known.
    pub fn person(&self, id: PersonId) -> Option<&Person> {
        self.people.get(&id).map(|p| &p.person)
    }

    /// Changes a person's standing. Retirement ends the person's own
    /// grants (K17.3); they are returned for the record.
    pub fn set_person_status(
        &mut self,
        id: PersonId,
        status: PersonStatus,
    ) -> Result<Vec<Grant>, ModelError> {
        let entry = self
            .people
            .get_mut(&id)
            .ok_or(ModelError::UnknownPerson(id))?;
        entry.person.status = status;
        Ok(if status == PersonStatus::Retired {
            self.end_grants_of(Subject::Person(id))
        } else {
            Vec::new()
        })
    }

    /// Moves a person to another unit (or to none). A real move ends the
    /// person's own grants (K17.3); they are returned for the record.
    pub fn transfer_person(
        &mut self,
        id: PersonId,
        to: Option<OrgUnitId>,
    ) -> Result<Vec<Grant>, ModelError> {
        if let Some(u) = to {
            if !self.units.contains_key(&u) {
                return Err(ModelError::UnknownOrgUnit(u));
            }
        }
        let entry = self
            .people
            .get_mut(&id)
            .ok_or(ModelError::UnknownPerson(id))?;
        let from = entry.person.org_unit;
        if from == to {
            return Ok(Vec::new());
        }
        entry.person.org_unit = to;
        if let Some(old) = from.and_then(|u| self.units.get_mut(&u)) {
            remove_one(&mut old.members, &id);
        }
        if let Some(new) = to.and_then(|u| self.units.get_mut(&u)) {
            new.members.push(id);
        }
        Ok(self.end_grants_of(Subject::Person(id)))
    }

    fn end_grants_of(&mut self, subject: Subject) -> Vec<Grant> {
        let ids = self.by_subject.get(&subject).cloned().unwrap_or_default();
        ids.into_iter()
            .filter_map(|g| self.remove_grant(g).ok())
            .collect()
    }

    // --- assets ------------------------------------------------------------

    fn check_asset(&self, asset: &Asset) -> Result<(), ModelError> {
        if !self.units.contains_key(&asset.owner) {
            return Err(ModelError::UnknownOrgUnit(asset.owner));
        }
        for p in asset.security_manager.iter().chain(&asset.operators) {
            if !self.people.contains_key(p) {
                return Err(ModelError::UnknownPerson(*p));
            }
        }
        Ok(())
    }

    fn index_admins(&mut self, asset: &Asset, add: bool) {
        for p in asset.security_manager.iter().chain(&asset.operators) {
            if let Some(entry) = self.people.get_mut(p) {
                if add {
                    entry.administers.push(asset.id);
                } else {
                    remove_one(&mut entry.administers, &asset.id);
                }
            }
        }
    }

    /// Adds an asset.
    pub fn add_asset(&mut self, asset: Asset) -> Result<(), ModelError> {
        if self.assets.contains_key(&asset.id) {
            return Err(ModelError::Duplicate {
                kind: "asset",
                id: asset.id.0,
            });
        }
        self.check_asset(&asset)?;
        self.index_admins(&asset, true);
        if let Some(u) = self.units.get_mut(&asset.owner) {
            u.owned_assets.push(asset.id);
        }
        self.assets.insert(
            asset.id,
            AssetEntry {
                asset,
                grants: Vec::new(),
                unit_grants: 0,
                denies: Vec::new(),
            },
        );
        Ok(())
    }

    /// Replaces an asset's attributes (owner, classification, zone,
    /// manager, operators …); its grants and denies stay. Returns the
    /// previous attributes.
    pub fn update_asset(&mut self, asset: Asset) -> Result<Asset, ModelError> {
        if !self.assets.contains_key(&asset.id) {
            return Err(ModelError::UnknownAsset(asset.id));
        }
        self.check_asset(&asset)?;
        let old = match self.assets.get_mut(&asset.id) {
            Some(entry) => std::mem::replace(&mut entry.asset, asset.clone()),
            None => return Err(ModelError::UnknownAsset(asset.id)),
        };
        self.index_admins(&old, false);
        self.index_admins(&asset, true);
        if old.owner != asset.owner {
            if let Some(u) = self.units.get_mut(&old.owner) {
                remove_one(&mut u.owned_assets, &asset.id);
            }
            if let Some(u) = self.units.get_mut(&asset.owner) {
                u.owned_assets.push(asset.id);
            }
        }
        Ok(old)
    }

    /// Changes an asset's classification (K3.1); returns the previous one.
    pub fn reclassify(
        &mut self,
        id: AssetId,
        classification: Classification,
    ) -> Result<Classification, ModelError> {
        let entry = self
            .assets
            .get_mut(&id)
            .ok_or(ModelError::UnknownAsset(id))?;
        Ok(std::mem::replace(
            &mut entry.asset.classification,
            classification,
        ))
    }

    /// Removes an asset with its grants and denies; returns the grants
    /// ended, for the record.
    pub fn remove_asset(&mut self, id: AssetId) -> Result<Vec<Grant>, ModelError> {
        let entry = self.assets.get(&id).ok_or(ModelError::UnknownAsset(id))?;
        let grants = entry.grants.clone();
        let denies = entry.denies.clone();
        let ended = grants
            .into_iter()
            .filter_map(|g| self.remove_grant(g).ok())
            .collect();
        for d in denies {
            let _ = self.remove_deny(d);
        }
        if let Some(entry) = self.assets.remove(&id) {
            self.index_admins(&entry.asset, false);
            if let Some(u) = self.units.get_mut(&entry.asset.owner) {
                remove_one(&mut u.owned_assets, &id);
            }
        }
        Ok(ended)
    }

    /// The asset, if known.
    pub fn asset(&self, id: AssetId) -> Option<&Asset> {
        self.assets.get(&id).map(|a| &a.asset)
    }

    // --- grants ------------------------------------------------------------

    fn check_subject(&self, subject: Subject) -> Result<(), ModelError> {
        match subject {
            Subject::Person(p) if !self.people.contains_key(&p) => {
                Err(ModelError::UnknownPerson(p))
            }
            Subject::OrgUnit(u) if !self.units.contains_key(&u) => {
                Err(ModelError::UnknownOrgUnit(u))
            }
            _ => Ok(()),
        }
    }

    fn compile(&self, grant: &Grant) -> Result<Rule, ModelError> {
        self.check_subject(grant.subject)?;
        if !self.assets.contains_key(&grant.asset) {
            return Err(ModelError::UnknownAsset(grant.asset));
        }
        if grant.actions.is_empty() {
            return Err(ModelError::Invalid {
                field: "grant.actions",
                rule: "at least one action",
            });
        }
        if grant.actions.contains(Action::Administer) {
            return Err(ModelError::Invalid {
                field: "grant.actions",
                rule: "administer is held by the security manager and named operators, not granted (K18)",
            });
        }
        if matches!(grant.subject, Subject::OrgUnit(_))
            && grant.reason.as_deref().is_none_or(|r| r.trim().is_empty())
        {
            return Err(ModelError::Invalid {
                field: "grant.reason",
                rule: "a grant to an org unit needs the reason it cannot be per person (K17.2)",
            });
        }
        let (from, until) = validity(grant.valid_from, grant.valid_until, "grant.valid_until")?;
        let c = &grant.conditions;
        let mut windows = Vec::with_capacity(c.windows.len());
        for w in &c.windows {
            let (s, e) = (seconds_of(w.start), seconds_of(w.end));
            if s == e {
                return Err(ModelError::Invalid {
                    field: "grant.conditions.windows",
                    rule: "a window's start and end must differ",
                });
            }
            windows.push((s, e));
        }
        Ok(Rule {
            actions: grant.actions.0,
            from,
            until,
            windows: windows.into_boxed_slice(),
            weekdays: c
                .weekdays
                .iter()
                .fold(0, |b, d| b | 1 << d.number_days_from_monday()),
            zones: c.zones.iter().fold(0, |b, z| b | z.bit()),
            areas: c.areas.clone().into_boxed_slice(),
        })
    }

    fn index_grant(&mut self, grant: &Grant) {
        if let Some(a) = self.assets.get_mut(&grant.asset) {
            insert_sorted(&mut a.grants, grant.id);
            if matches!(grant.subject, Subject::OrgUnit(_)) {
                a.unit_grants += 1;
            }
        }
        insert_sorted(
            self.by_pair
                .entry((grant.subject, grant.asset))
                .or_default(),
            grant.id,
        );
        insert_sorted(self.by_subject.entry(grant.subject).or_default(), grant.id);
    }

    fn unindex_grant(&mut self, grant: &Grant) {
        if let Some(a) = self.assets.get_mut(&grant.asset) {
            remove_sorted(&mut a.grants, &grant.id);
            if matches!(grant.subject, Subject::OrgUnit(_)) {
                a.unit_grants = a.unit_grants.saturating_sub(1);
            }
        }
        if let Entry::Occupied(mut e) = self.by_pair.entry((grant.subject, grant.asset)) {
            remove_sorted(e.get_mut(), &grant.id);
            if e.get().is_empty() {
                e.remove();
            }
        }
        if let Entry::Occupied(mut e) = self.by_subject.entry(grant.subject) {
            remove_sorted(e.get_mut(), &grant.id);
            if e.get().is_empty() {
                e.remove();
            }
        }
    }

    /// Adds a grant after checking it (subject and asset known, actions,
    /// K17.2 reason for a unit, no administer, period, windows).
    pub fn add_grant(&mut self, grant: Grant) -> Result<(), ModelError> {
        if self.grants.contains_key(&grant.id) {
            return Err(ModelError::Duplicate {
                kind: "grant",
                id: grant.id.0,
            });
        }
        let rule = self.compile(&grant)?;
        self.index_grant(&grant);
        self.grants.insert(grant.id, GrantEntry { grant, rule });
        Ok(())
    }

    /// Removes a grant; returns it.
    pub fn remove_grant(&mut self, id: GrantId) -> Result<Grant, ModelError> {
        let entry = self
            .grants
            .remove(&id)
            .ok_or(ModelError::UnknownGrant(id))?;
        self.unindex_grant(&entry.grant);
        Ok(entry.grant)
    }

    /// Replaces a grant with the same id; returns the old one. The new one
    /// is checked first: on error nothing changes.
    pub fn replace_grant(&mut self, grant: Grant) -> Result<Grant, ModelError> {
        if !self.grants.contains_key(&grant.id) {
            return Err(ModelError::UnknownGrant(grant.id));
        }
        let rule = self.compile(&grant)?;
        let old = self.remove_grant(grant.id)?;
        self.index_grant(&grant);
        self.grants.insert(grant.id, GrantEntry { grant, rule });
        Ok(old)
    }

    /// The grant, if known.
    pub fn grant(&self, id: GrantId) -> Option<&Grant> {
        self.grants.get(&id).map(|g| &g.grant)
    }

    /// The grants on an asset, by id.
    pub fn grants_on(&self, asset: AssetId) -> impl Iterator<Item = &Grant> {
        self.assets
            .get(&asset)
            .into_iter()
            .flat_map(|a| a.grants.iter())
            .filter_map(|g| self.grant(*g))
    }

    /// The grants to a subject (not through its units), by id.
    pub fn grants_to(&self, subject: Subject) -> impl Iterator<Item = &Grant> {
        self.by_subject
            .get(&subject)
            .into_iter()
            .flatten()
            .filter_map(|g| self.grant(*g))
    }

    // --- denies ------------------------------------------------------------

    /// Adds an explicit deny.
    pub fn add_deny(&mut self, deny: Deny) -> Result<(), ModelError> {
        if self.denies.contains_key(&deny.id) {
            return Err(ModelError::Duplicate {
                kind: "deny",
                id: deny.id.0,
            });
        }
        self.check_subject(deny.subject)?;
        if deny.actions.is_empty() {
            return Err(ModelError::Invalid {
                field: "deny.actions",
                rule: "at least one action",
            });
        }
        let (from, until) = validity(deny.valid_from, deny.valid_until, "deny.valid_until")?;
        let asset = self
            .assets
            .get_mut(&deny.asset)
            .ok_or(ModelError::UnknownAsset(deny.asset))?;
        insert_sorted(&mut asset.denies, deny.id);
        self.denies.insert(
            deny.id,
            DenyEntry {
                actions: deny.actions.0,
                from,
                until,
                deny,
            },
        );
        Ok(())
    }

    /// Removes a deny; returns it.
    pub fn remove_deny(&mut self, id: DenyId) -> Result<Deny, ModelError> {
        let entry = self.denies.remove(&id).ok_or(ModelError::UnknownDeny(id))?;
        if let Some(a) = self.assets.get_mut(&entry.deny.asset) {
            remove_sorted(&mut a.denies, &id);
        }
        Ok(entry.deny)
    }

    // --- decisions ---------------------------------------------------------

    /// Decides one request by the rules in the module documentation.
    pub fn decide(&self, request: &Request) -> Result<Decision, DecideError> {
        let env = Env::of(&request.context)?;
        let person = self
            .people
            .get(&request.subject)
            .ok_or(DecideError::UnknownPerson(request.subject))?;
        let asset = self
            .assets
            .get(&request.asset)
            .ok_or(DecideError::UnknownAsset(request.asset))?;
        Ok(self.reason(person, request.action, asset, &env).into())
    }

    fn chain(&self, person: &Person) -> &[OrgUnitId] {
        person
            .org_unit
            .and_then(|u| self.units.get(&u))
            .map_or(&[], |u| &u.ancestors)
    }

    #[inline]
    fn reason(
        &self,
        person: &PersonEntry,
        action: Action,
        asset: &AssetEntry,
        env: &Env,
    ) -> Reason {
        let p = &person.person;
        let a = &asset.asset;
        // 1. K17.3.
        if p.status != PersonStatus::Active {
            return Reason::PersonInactive(p.status);
        }
        let chain = self.chain(p);
        let bit = action.bit();
        // 2. Explicit denies, lowest id first.
        for d in &asset.denies {
            let Some(d) = self.denies.get(d) else {
                continue;
            };
            if d.actions & bit != 0
                && d.from <= env.now
                && env.now < d.until
                && match d.deny.subject {
                    Subject::Person(id) => id == p.id,
                    Subject::OrgUnit(u) => chain.contains(&u),
                }
            {
                return Reason::ExplicitDeny(d.deny.id);
            }
        }
        // 3. K18.
        if action == Action::Administer {
            return if a.security_manager == Some(p.id) {
                Reason::SecurityManager
            } else if a.operators.contains(&p.id) {
                Reason::DelegatedOperator
            } else {
                Reason::NotAdministrator
            };
        }
        // 4. K3.1.2.
        let secret = a.classification.is_secret();
        if action == Action::Read && !secret && chain.contains(&a.owner) {
            return Reason::GeneralOwnUnit;
        }
        // 5. Grants: the person's own first, then the nearest unit's; lowest id first.
        let mut not_in_effect = None;
        if !asset.grants.is_empty() {
            let units = if asset.unit_grants == 0 {
                &[][..]
            } else {
                chain
            };
            let subjects = std::iter::once(Subject::Person(p.id))
                .chain(units.iter().map(|u| Subject::OrgUnit(*u)));
            for subject in subjects {
                let Some(list) = self.by_pair.get(&(subject, a.id)) else {
                    continue;
                };
                for g in list {
                    let Some(entry) = self.grants.get(g) else {
                        continue;
                    };
                    let rule = &entry.rule;
                    if rule.actions & bit == 0 {
                        continue;
                    }
                    if rule.valid_at(env.now) && rule.conditions_hold(env) {
                        return Reason::Granted(*g);
                    }
                    not_in_effect = Some(not_in_effect.map_or(*g, |n: GrantId| n.min(*g)));
                }
            }
        }
        // 6. Deny with the most specific reason.
        match (not_in_effect, secret, action) {
            (Some(g), _, _) => Reason::GrantNotInEffect(g),
            (None, true, Action::Export) => Reason::SecretExportNeedsExportGrant,
            (None, true, _) => Reason::SecretNeedsGrant,
            (None, false, _) => Reason::NoGrant,
        }
    }

    fn allowed_actions(&self, person: &PersonEntry, asset: &AssetEntry, env: &Env) -> ActionSet {
        Action::ALL
            .into_iter()
            .filter(|a| self.reason(person, *a, asset, env).allows())
            .collect()
    }

    fn push_members(&self, unit: OrgUnitId, out: &mut Vec<PersonId>) {
        let mut stack = vec![unit];
        while let Some(u) = stack.pop() {
            if let Some(entry) = self.units.get(&u) {
                out.extend_from_slice(&entry.members);
                stack.extend_from_slice(&entry.children);
            }
        }
    }

    /// 棚卸し: everyone who may do something to `asset`, with what, by the
    /// same rules as [`AccessEngine::decide`]. Sorted by person.
    pub fn who_can_access(
        &self,
        asset: AssetId,
        query: &Query,
    ) -> Result<Vec<PersonAccess>, DecideError> {
        let env = Env::of_query(query)?;
        let entry = self
            .assets
            .get(&asset)
            .ok_or(DecideError::UnknownAsset(asset))?;
        let a = &entry.asset;
        let mut candidates = Vec::new();
        if !a.classification.is_secret() {
            self.push_members(a.owner, &mut candidates);
        }
        for g in entry.grants.iter().filter_map(|g| self.grants.get(g)) {
            match g.grant.subject {
                Subject::Person(p) => candidates.push(p),
                Subject::OrgUnit(u) => self.push_members(u, &mut candidates),
            }
        }
        candidates.extend(a.security_manager.iter().chain(&a.operators));
        candidates.sort_unstable();
        candidates.dedup();
        Ok(candidates
            .into_iter()
            .filter_map(|id| {
                let person = self.people.get(&id)?;
                let actions = self.allowed_actions(person, entry, &env);
                (!actions.is_empty()).then_some(PersonAccess {
                    person: id,
                    actions,
                })
            })
            .collect())
    }

    /// 棚卸し: every asset `person` may do something to, with what, by the
    /// same rules as [`AccessEngine::decide`]. Sorted by asset.
    pub fn what_can_access(
        &self,
        person: PersonId,
        query: &Query,
    ) -> Result<Vec<AssetAccess>, DecideError> {
        let env = Env::of_query(query)?;
        let entry = self
            .people
            .get(&person)
            .ok_or(DecideError::UnknownPerson(person))?;
        let chain = self.chain(&entry.person);
        let mut candidates: Vec<AssetId> = entry.administers.clone();
        let subjects = std::iter::once(Subject::Person(person))
            .chain(chain.iter().map(|u| Subject::OrgUnit(*u)));
        for subject in subjects {
            candidates.extend(self.grants_to(subject).map(|g| g.asset));
        }
        for u in chain.iter().filter_map(|u| self.units.get(u)) {
            candidates.extend_from_slice(&u.owned_assets);
        }
        candidates.sort_unstable();
        candidates.dedup();
        Ok(candidates
            .into_iter()
            .filter_map(|id| {
                let asset = self.assets.get(&id)?;
                let actions = self.allowed_actions(entry, asset, &env);
                (!actions.is_empty()).then_some(AssetAccess { asset: id, actions })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClauseId;
    use time::macros::{datetime, time};

    // The ward in these tests:
    //   1 区 ─ 10 総務部 ─ 100 総務課 ─ 1000 文書係
    //                    └ 101 情報政策課
    //        └ 20 福祉部 ─ 200 福祉課
    const KU: OrgUnitId = OrgUnitId(1);
    const SOMU_BU: OrgUnitId = OrgUnitId(10);
    const SOMU_KA: OrgUnitId = OrgUnitId(100);
    const BUNSHO: OrgUnitId = OrgUnitId(1000);
    const JOHO: OrgUnitId = OrgUnitId(101);
    const FUKUSHI: OrgUnitId = OrgUnitId(200);

    // People: 1 総務課, 2 文書係, 3 情報政策課, 4 福祉課, 5 総務課 retired,
    // 6 disabled, 7 locked, 8 no unit, 9 security manager (情報政策課),
    // 10 operator (情報政策課).
    const SOMU: PersonId = PersonId(1);
    const BUNSHO_STAFF: PersonId = PersonId(2);
    const JOHO_STAFF: PersonId = PersonId(3);
    const FUKUSHI_STAFF: PersonId = PersonId(4);
    const RETIRED: PersonId = PersonId(5);
    const DISABLED: PersonId = PersonId(6);
    const LOCKED: PersonId = PersonId(7);
    const NO_UNIT: PersonId = PersonId(8);
    const MANAGER: PersonId = PersonId(9);
    const OPERATOR: PersonId = PersonId(10);

    // Assets: 1 general (総務課), 2 secret document (総務課), 3 system secret
    // (情報政策課, managed by 9, operated by 10).
    const GENERAL: AssetId = AssetId(1);
    const SECRET: AssetId = AssetId(2);
    const SYSTEM: AssetId = AssetId(3);

    // 2026-06-03 is a Wednesday; 10:00 JST.
    const WED_10: OffsetDateTime = datetime!(2026-06-03 10:00 +9);

    fn person(id: PersonId, unit: Option<OrgUnitId>, status: PersonStatus) -> Person {
        Person {
            id,
            org_unit: unit,
            status,
        }
    }

    fn grant(id: i64, subject: Subject, asset: AssetId, actions: &[Action]) -> Grant {
        Grant {
            id: GrantId(id),
            subject,
            asset,
            actions: ActionSet::of(actions),
            valid_from: None,
            valid_until: None,
            conditions: Conditions::default(),
            reason: matches!(subject, Subject::OrgUnit(_)).then(|| "窓口端末の共用".to_owned()),
        }
    }

    fn ward() -> AccessEngine {
        use PersonStatus::*;
        let units = [
            (KU, None),
            (SOMU_BU, Some(KU)),
            (SOMU_KA, Some(SOMU_BU)),
            (BUNSHO, Some(SOMU_KA)),
            (JOHO, Some(SOMU_BU)),
            (FUKUSHI, Some(OrgUnitId(20))),
            (OrgUnitId(20), Some(KU)),
        ]
        .map(|(id, parent)| OrgUnit { id, parent });
        let people = [
            person(SOMU, Some(SOMU_KA), Active),
            person(BUNSHO_STAFF, Some(BUNSHO), Active),
            person(JOHO_STAFF, Some(JOHO), Active),
            person(FUKUSHI_STAFF, Some(FUKUSHI), Active),
            person(RETIRED, Some(SOMU_KA), Retired),
            person(DISABLED, Some(SOMU_KA), Disabled),
            person(LOCKED, Some(SOMU_KA), Locked),
            person(NO_UNIT, None, Active),
            person(MANAGER, Some(JOHO), Active),
            person(OPERATOR, Some(JOHO), Active),
        ];
        let asset = |id, owner, classification| Asset {
            id,
            owner,
            classification,
            zone: NetworkZone::Lgwan,
            personal_info: false,
            security_manager: None,
            operators: Vec::new(),
        };
        let assets = [
            asset(GENERAL, SOMU_KA, Classification::General),
            asset(
                SECRET,
                SOMU_KA,
                Classification::Secret(SecretGround::SecretDocument),
            ),
            Asset {
                security_manager: Some(MANAGER),
                operators: vec![OPERATOR],
                zone: NetworkZone::MyNumber,
                ..asset(
                    SYSTEM,
                    JOHO,
                    Classification::Secret(SecretGround::SystemOperation),
                )
            },
        ];
        let grants = [
            // 11: 福祉課 staff may read 秘密 2 on weekdays 08:30–17:15 from LGWAN.
            Grant {
                conditions: Conditions {
                    windows: vec![TimeWindow {
                        start: time!(8:30),
                        end: time!(17:15),
                    }],
                    weekdays: vec![
                        Weekday::Monday,
                        Weekday::Tuesday,
                        Weekday::Wednesday,
                        Weekday::Thursday,
                        Weekday::Friday,
                    ],
                    zones: vec![NetworkZone::Lgwan],
                    areas: Vec::new(),
                },
                ..grant(11, Subject::Person(FUKUSHI_STAFF), SECRET, &[Action::Read])
            },
            // 12: 総務課 (and 文書係) may read and write 秘密 2, as a unit.
            grant(
                12,
                Subject::OrgUnit(SOMU_KA),
                SECRET,
                &[Action::Read, Action::Write],
            ),
            // 13: the operator may export the system's data, in area 7 only.
            Grant {
                conditions: Conditions {
                    areas: vec![AreaId(7)],
                    ..Conditions::default()
                },
                ..grant(13, Subject::Person(OPERATOR), SYSTEM, &[Action::Export])
            },
            // 14: 情報政策課 staff may write general asset 1 during FY2026.
            Grant {
                valid_from: Some(datetime!(2026-04-01 0:00 +9)),
                valid_until: Some(datetime!(2027-04-01 0:00 +9)),
                ..grant(14, Subject::Person(JOHO_STAFF), GENERAL, &[Action::Write])
            },
            // 15: night shift 22:00–06:00 for 3 on the system.
            Grant {
                conditions: Conditions {
                    windows: vec![TimeWindow {
                        start: time!(22:00),
                        end: time!(6:00),
                    }],
                    ..Conditions::default()
                },
                ..grant(15, Subject::Person(JOHO_STAFF), SYSTEM, &[Action::Read])
            },
        ];
        let denies = [Deny {
            id: DenyId(21),
            subject: Subject::Person(BUNSHO_STAFF),
            asset: SECRET,
            actions: ActionSet::of(&[Action::Write]),
            valid_from: None,
            valid_until: None,
        }];
        match AccessEngine::load(units, people, assets, grants, denies) {
            Ok(engine) => engine,
            Err(e) => panic!("test ward: {e}"),
        }
    }

    fn ctx(at: OffsetDateTime) -> Context {
        Context {
            at,
            zone: Some(NetworkZone::Lgwan),
            area: None,
        }
    }

    /// Decides and compares the reason code (which implies allow/deny).
    fn check(engine: &AccessEngine, rows: &[(PersonId, Action, AssetId, Context, &str)]) {
        for (i, (who, action, asset, context, expected)) in rows.iter().enumerate() {
            let request = Request {
                subject: *who,
                action: *action,
                asset: *asset,
                context: *context,
            };
            let got = engine.decide(&request);
            match got {
                Ok(d) => {
                    assert_eq!(d.reason.code(), *expected, "row {i}: {request:?}");
                    assert_eq!(d.allow, expected.starts_with("access.allow"), "row {i}");
                    assert_eq!(d.clauses, d.reason.clauses(), "row {i}");
                }
                Err(e) => panic!("row {i}: {request:?}: {e}"),
            }
        }
    }

    const GENERAL_OWN: &str = "access.allow.general_own_unit";
    const GRANT: &str = "access.allow.grant";
    const MANAGER_OK: &str = "access.allow.security_manager";
    const OPERATOR_OK: &str = "access.allow.delegated_operator";
    const NO_GRANT: &str = "access.deny.no_grant";
    const SECRET_NO: &str = "access.deny.secret_needs_grant";
    const EXPORT_NO: &str = "access.deny.secret_export_needs_export_grant";
    const NOT_IN_EFFECT: &str = "access.deny.grant_not_in_effect";
    const NOT_ADMIN: &str = "access.deny.not_administrator";

    #[test]
    fn k3_1_2_general_readable_by_owning_unit_and_below() {
        let e = ward();
        let c = ctx(WED_10);
        check(
            &e,
            &[
                (SOMU, Action::Read, GENERAL, c, GENERAL_OWN),
                (BUNSHO_STAFF, Action::Read, GENERAL, c, GENERAL_OWN),
                // A sibling unit and a unit above are not "owning unit and below".
                (JOHO_STAFF, Action::Read, GENERAL, c, NO_GRANT),
                (FUKUSHI_STAFF, Action::Read, GENERAL, c, NO_GRANT),
                (NO_UNIT, Action::Read, GENERAL, c, NO_GRANT),
                // Read only: writing and exporting need a grant.
                (SOMU, Action::Write, GENERAL, c, NO_GRANT),
                (SOMU, Action::Export, GENERAL, c, NO_GRANT),
                // A grant widens it: 3 may write during FY2026 only.
                (JOHO_STAFF, Action::Write, GENERAL, c, GRANT),
                (
                    JOHO_STAFF,
                    Action::Write,
                    GENERAL,
                    ctx(datetime!(2027-04-01 0:00 +9)),
                    NOT_IN_EFFECT,
                ),
                (
                    JOHO_STAFF,
                    Action::Write,
                    GENERAL,
                    ctx(datetime!(2026-03-31 23:59:59 +9)),
                    NOT_IN_EFFECT,
                ),
            ],
        );
    }

    #[test]
    fn k3_2_1_secret_only_through_grants_and_their_conditions() {
        let e = ward();
        let lgwan = |at| ctx(at);
        let internet = |at| Context {
            zone: Some(NetworkZone::Internet),
            ..ctx(at)
        };
        let no_zone = |at| Context {
            zone: None,
            ..ctx(at)
        };
        check(
            &e,
            &[
                // The owning unit gets no baseline for 秘密; here a unit grant (12).
                (SOMU, Action::Read, SECRET, lgwan(WED_10), GRANT),
                (BUNSHO_STAFF, Action::Read, SECRET, lgwan(WED_10), GRANT),
                (JOHO_STAFF, Action::Read, SECRET, lgwan(WED_10), SECRET_NO),
                // Grant 11: weekdays 08:30–17:15 JST from LGWAN.
                (FUKUSHI_STAFF, Action::Read, SECRET, lgwan(WED_10), GRANT),
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    lgwan(datetime!(2026-06-03 8:30 +9)),
                    GRANT,
                ),
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    lgwan(datetime!(2026-06-03 8:29:59 +9)),
                    NOT_IN_EFFECT,
                ),
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    lgwan(datetime!(2026-06-03 17:15 +9)),
                    NOT_IN_EFFECT,
                ),
                // Saturday.
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    lgwan(datetime!(2026-06-06 10:00 +9)),
                    NOT_IN_EFFECT,
                ),
                // Windows are JST whatever offset the caller used: 01:00 UTC = 10:00 JST.
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    lgwan(datetime!(2026-06-03 1:00 UTC)),
                    GRANT,
                ),
                // Friday 23:00 UTC is Saturday 08:00 JST.
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    lgwan(datetime!(2026-06-05 23:00 UTC)),
                    NOT_IN_EFFECT,
                ),
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    internet(WED_10),
                    NOT_IN_EFFECT,
                ),
                (
                    FUKUSHI_STAFF,
                    Action::Read,
                    SECRET,
                    no_zone(WED_10),
                    NOT_IN_EFFECT,
                ),
                // The grant is for read only.
                (
                    FUKUSHI_STAFF,
                    Action::Write,
                    SECRET,
                    lgwan(WED_10),
                    SECRET_NO,
                ),
                // Grant 15 wraps midnight: 22:00–06:00.
                (
                    JOHO_STAFF,
                    Action::Read,
                    SYSTEM,
                    lgwan(datetime!(2026-06-03 23:30 +9)),
                    GRANT,
                ),
                (
                    JOHO_STAFF,
                    Action::Read,
                    SYSTEM,
                    lgwan(datetime!(2026-06-03 5:59:59 +9)),
                    GRANT,
                ),
                (
                    JOHO_STAFF,
                    Action::Read,
                    SYSTEM,
                    lgwan(datetime!(2026-06-03 6:00 +9)),
                    NOT_IN_EFFECT,
                ),
                (
                    JOHO_STAFF,
                    Action::Read,
                    SYSTEM,
                    lgwan(WED_10),
                    NOT_IN_EFFECT,
                ),
            ],
        );
    }

    #[test]
    fn k12_1_3_export_of_secret_only_by_explicit_export_grant() {
        let e = ward();
        let in_area = |area| Context {
            area,
            ..ctx(WED_10)
        };
        check(
            &e,
            &[
                // Read and write grants (12) do not imply export.
                (SOMU, Action::Export, SECRET, ctx(WED_10), EXPORT_NO),
                (
                    FUKUSHI_STAFF,
                    Action::Export,
                    SECRET,
                    ctx(WED_10),
                    EXPORT_NO,
                ),
                // Grant 13: export in managed area 7 only.
                (
                    OPERATOR,
                    Action::Export,
                    SYSTEM,
                    in_area(Some(AreaId(7))),
                    GRANT,
                ),
                (
                    OPERATOR,
                    Action::Export,
                    SYSTEM,
                    in_area(Some(AreaId(8))),
                    NOT_IN_EFFECT,
                ),
                (
                    OPERATOR,
                    Action::Export,
                    SYSTEM,
                    in_area(None),
                    NOT_IN_EFFECT,
                ),
                // Administering does not imply export (nor reading).
                (
                    MANAGER,
                    Action::Export,
                    SYSTEM,
                    in_area(Some(AreaId(7))),
                    EXPORT_NO,
                ),
                (MANAGER, Action::Read, SYSTEM, ctx(WED_10), SECRET_NO),
            ],
        );
    }

    #[test]
    fn k12_1_2_explicit_deny_overrides_allow() {
        let mut e = ward();
        let c = ctx(WED_10);
        // 2 reads 秘密 2 through the unit grant 12 but may not write (deny 21).
        check(
            &e,
            &[
                (BUNSHO_STAFF, Action::Read, SECRET, c, GRANT),
                (
                    BUNSHO_STAFF,
                    Action::Write,
                    SECRET,
                    c,
                    "access.deny.explicit",
                ),
                (SOMU, Action::Write, SECRET, c, GRANT),
            ],
        );
        // A unit deny reaches the units below; it overrides the manager too.
        for (id, subject, asset, action) in [
            (22, Subject::OrgUnit(SOMU_KA), GENERAL, Action::Read),
            (23, Subject::Person(MANAGER), SYSTEM, Action::Administer),
        ] {
            let added = e.add_deny(Deny {
                id: DenyId(id),
                subject,
                asset,
                actions: ActionSet::of(&[action]),
                valid_from: None,
                valid_until: Some(datetime!(2026-07-01 0:00 +9)),
            });
            assert_eq!(added, Ok(()));
        }
        check(
            &e,
            &[
                (SOMU, Action::Read, GENERAL, c, "access.deny.explicit"),
                (
                    BUNSHO_STAFF,
                    Action::Read,
                    GENERAL,
                    c,
                    "access.deny.explicit",
                ),
                (
                    MANAGER,
                    Action::Administer,
                    SYSTEM,
                    c,
                    "access.deny.explicit",
                ),
                // After its period the denies lapse.
                (
                    SOMU,
                    Action::Read,
                    GENERAL,
                    ctx(datetime!(2026-07-01 0:00 +9)),
                    GENERAL_OWN,
                ),
            ],
        );
        assert!(e.remove_deny(DenyId(23)).is_ok());
        check(&e, &[(MANAGER, Action::Administer, SYSTEM, c, MANAGER_OK)]);
    }

    #[test]
    fn k18_administer_only_by_security_manager_or_operator() {
        let mut e = ward();
        let c = ctx(WED_10);
        check(
            &e,
            &[
                (MANAGER, Action::Administer, SYSTEM, c, MANAGER_OK),
                (OPERATOR, Action::Administer, SYSTEM, c, OPERATOR_OK),
                (JOHO_STAFF, Action::Administer, SYSTEM, c, NOT_ADMIN),
                // Owning-unit staff of a general asset cannot administer it.
                (SOMU, Action::Administer, GENERAL, c, NOT_ADMIN),
            ],
        );
        // Administer cannot be granted.
        let refused = e.add_grant(grant(
            30,
            Subject::Person(JOHO_STAFF),
            SYSTEM,
            &[Action::Read, Action::Administer],
        ));
        assert!(
            matches!(
                refused,
                Err(ModelError::Invalid {
                    field: "grant.actions",
                    ..
                })
            ),
            "{refused:?}"
        );
        // Naming an operator through the asset does.
        let mut system = e
            .asset(SYSTEM)
            .cloned()
            .unwrap_or_else(|| panic!("asset 3"));
        system.operators.push(JOHO_STAFF);
        assert!(e.update_asset(system).is_ok());
        check(
            &e,
            &[(JOHO_STAFF, Action::Administer, SYSTEM, c, OPERATOR_OK)],
        );
    }

    #[test]
    fn k17_3_inactive_person_never_allowed() {
        let e = ward();
        let c = ctx(WED_10);
        // Each of them would otherwise read GENERAL (owning unit) and SECRET (grant 12).
        for (who, code) in [
            (RETIRED, "access.deny.person_retired"),
            (DISABLED, "access.deny.person_disabled"),
            (LOCKED, "access.deny.person_locked"),
        ] {
            let rows: Vec<_> = [GENERAL, SECRET, SYSTEM]
                .into_iter()
                .flat_map(|asset| Action::ALL.map(|action| (who, action, asset, c, code)))
                .collect();
            check(&e, &rows);
        }
    }

    #[test]
    fn k17_3_retired_person_never_allowed_and_loses_grants() {
        let mut e = ward();
        let c = ctx(WED_10);
        check(&e, &[(FUKUSHI_STAFF, Action::Read, SECRET, c, GRANT)]);
        let ended = e.set_person_status(FUKUSHI_STAFF, PersonStatus::Retired);
        assert_eq!(ended.map(|g| g.len()), Ok(1));
        check(
            &e,
            &[(
                FUKUSHI_STAFF,
                Action::Read,
                SECRET,
                c,
                "access.deny.person_retired",
            )],
        );
        // Even back to active, the grant has ended.
        assert!(e
            .set_person_status(FUKUSHI_STAFF, PersonStatus::Active)
            .is_ok());
        check(&e, &[(FUKUSHI_STAFF, Action::Read, SECRET, c, SECRET_NO)]);
    }

    #[test]
    fn k17_3_transfer_ends_own_grants_and_moves_unit_access() {
        let mut e = ward();
        let c = ctx(WED_10);
        let ended = e.transfer_person(JOHO_STAFF, Some(SOMU_KA));
        assert_eq!(
            ended.map(|g| g.iter().map(|g| g.id).collect::<Vec<_>>()),
            Ok(vec![GrantId(14), GrantId(15)])
        );
        check(
            &e,
            &[
                (JOHO_STAFF, Action::Write, GENERAL, c, NO_GRANT),
                // Now in 総務課: the owning unit's read and the unit grant 12.
                (JOHO_STAFF, Action::Read, GENERAL, c, GENERAL_OWN),
                (JOHO_STAFF, Action::Read, SECRET, c, GRANT),
            ],
        );
        // A unit moved under another parent takes its staff along.
        assert!(e
            .upsert_org_unit(OrgUnit {
                id: BUNSHO,
                parent: Some(FUKUSHI)
            })
            .is_ok());
        check(
            &e,
            &[
                (BUNSHO_STAFF, Action::Read, GENERAL, c, NO_GRANT),
                (BUNSHO_STAFF, Action::Read, SECRET, c, SECRET_NO),
            ],
        );
        assert_eq!(
            e.upsert_org_unit(OrgUnit {
                id: SOMU_BU,
                parent: Some(SOMU_KA)
            }),
            Err(ModelError::OrgCycle(SOMU_BU))
        );
    }

    #[test]
    fn k3_1_reclassification_takes_effect_at_once() {
        let mut e = ward();
        let c = ctx(WED_10);
        assert_eq!(
            e.reclassify(
                GENERAL,
                Classification::Secret(SecretGround::SecretDocument)
            ),
            Ok(Classification::General)
        );
        check(
            &e,
            &[
                (SOMU, Action::Read, GENERAL, c, SECRET_NO),
                (JOHO_STAFF, Action::Write, GENERAL, c, GRANT),
            ],
        );
        assert!(e.reclassify(SECRET, Classification::General).is_ok());
        check(&e, &[(FUKUSHI_STAFF, Action::Export, SECRET, c, NO_GRANT)]);
    }

    #[test]
    fn k17_2_unit_grant_needs_a_reason_and_grants_are_checked() {
        let mut e = ward();
        let base = grant(40, Subject::OrgUnit(FUKUSHI), GENERAL, &[Action::Read]);
        let rows: Vec<(Grant, Result<(), ModelError>)> = vec![
            (
                Grant {
                    reason: None,
                    ..base.clone()
                },
                Err(ModelError::Invalid {
                    field: "grant.reason",
                    rule: "a grant to an org unit needs the reason it cannot be per person (K17.2)",
                }),
            ),
            (
                Grant {
                    reason: Some("  ".into()),
                    ..base.clone()
                },
                Err(ModelError::Invalid {
                    field: "grant.reason",
                    rule: "a grant to an org unit needs the reason it cannot be per person (K17.2)",
                }),
            ),
            (
                Grant {
                    actions: ActionSet::EMPTY,
                    ..base.clone()
                },
                Err(ModelError::Invalid {
                    field: "grant.actions",
                    rule: "at least one action",
                }),
            ),
            (
                Grant {
                    valid_from: Some(datetime!(2026-05-01 0:00 UTC)),
                    valid_until: Some(datetime!(2026-05-01 0:00 UTC)),
                    ..base.clone()
                },
                Err(ModelError::Invalid {
                    field: "grant.valid_until",
                    rule: "valid_from must be before valid_until",
                }),
            ),
            (
                Grant {
                    conditions: Conditions {
                        windows: vec![TimeWindow {
                            start: time!(9:00),
                            end: time!(9:00),
                        }],
                        ..Conditions::default()
                    },
                    ..base.clone()
                },
                Err(ModelError::Invalid {
                    field: "grant.conditions.windows",
                    rule: "a window's start and end must differ",
                }),
            ),
            (
                Grant {
                    subject: Subject::Person(PersonId(999)),
                    ..base.clone()
                },
                Err(ModelError::UnknownPerson(PersonId(999))),
            ),
            (
                Grant {
                    asset: AssetId(999),
                    ..base.clone()
                },
                Err(ModelError::UnknownAsset(AssetId(999))),
            ),
            (
                Grant {
                    id: GrantId(11),
                    ..base.clone()
                },
                Err(ModelError::Duplicate {
                    kind: "grant",
                    id: 11,
                }),
            ),
            (base.clone(), Ok(())),
        ];
        for (i, (g, expected)) in rows.into_iter().enumerate() {
            assert_eq!(e.add_grant(g), expected, "row {i}");
        }
        check(
            &e,
            &[(FUKUSHI_STAFF, Action::Read, GENERAL, ctx(WED_10), GRANT)],
        );
    }

    #[test]
    fn k12_1_2_unknown_subject_or_asset_is_an_error_not_a_deny() {
        let e = ward();
        let request = |subject, asset| Request {
            subject,
            action: Action::Read,
            asset,
            context: ctx(WED_10),
        };
        assert_eq!(
            e.decide(&request(PersonId(999), GENERAL)),
            Err(DecideError::UnknownPerson(PersonId(999)))
        );
        assert_eq!(
            e.decide(&request(SOMU, AssetId(999))),
            Err(DecideError::UnknownAsset(AssetId(999)))
        );
        assert_eq!(
            "delete".parse::<Action>(),
            Err(DecideError::UnknownAction("delete".into()))
        );
        assert_eq!("lgwan".parse::<NetworkZone>(), Ok(NetworkZone::Lgwan));
        // The last moment `time` can carry has no JST date: an error, not a panic.
        let edge = Request {
            context: ctx(datetime!(9999-12-31 23:59:59 UTC)),
            ..request(SOMU, GENERAL)
        };
        assert_eq!(e.decide(&edge), Err(DecideError::TimeOutOfRange));
    }

    #[test]
    fn k3_2_1_grant_replace_and_remove_take_effect_at_once() {
        let mut e = ward();
        let c = ctx(WED_10);
        let widened = Grant {
            conditions: Conditions::default(),
            ..e.grant(GrantId(11))
                .cloned()
                .unwrap_or_else(|| panic!("grant 11"))
        };
        assert!(e.replace_grant(widened).is_ok());
        check(
            &e,
            &[(
                FUKUSHI_STAFF,
                Action::Read,
                SECRET,
                ctx(datetime!(2026-06-06 23:00 +9)),
                GRANT,
            )],
        );
        assert!(e.remove_grant(GrantId(11)).is_ok());
        assert_eq!(
            e.remove_grant(GrantId(11)),
            Err(ModelError::UnknownGrant(GrantId(11)))
        );
        check(&e, &[(FUKUSHI_STAFF, Action::Read, SECRET, c, SECRET_NO)]);
        assert!(e.remove_asset(SECRET).is_ok());
        assert_eq!(e.grants_to(Subject::OrgUnit(SOMU_KA)).count(), 0);
    }

    #[test]
    fn k3_2_1_review_lists_match_decisions() {
        let e = ward();
        let at = Query::At(ctx(WED_10));
        let who = e.who_can_access(SECRET, &at).unwrap_or_default();
        let listed: Vec<(PersonId, Vec<Action>)> = who
            .iter()
            .map(|p| (p.person, p.actions.iter().collect()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (SOMU, vec![Action::Read, Action::Write]),
                (BUNSHO_STAFF, vec![Action::Read]),
                (FUKUSHI_STAFF, vec![Action::Read]),
            ]
        );
        // Ignoring conditions, the night-shift grant 15 shows up.
        let any = e
            .what_can_access(JOHO_STAFF, &Query::AnyConditions(WED_10))
            .unwrap_or_default();
        let listed: Vec<(AssetId, Vec<Action>)> = any
            .iter()
            .map(|a| (a.asset, a.actions.iter().collect()))
            .collect();
        assert_eq!(
            listed,
            vec![(GENERAL, vec![Action::Write]), (SYSTEM, vec![Action::Read])]
        );
        // Both directions agree with decide() for everyone and everything.
        for p in 1..=10 {
            let person = PersonId(p);
            let what = e.what_can_access(person, &at).unwrap_or_default();
            for asset in [GENERAL, SECRET, SYSTEM] {
                let by_decide: ActionSet = Action::ALL
                    .into_iter()
                    .filter(|action| {
                        e.decide(&Request {
                            subject: person,
                            action: *action,
                            asset,
                            context: ctx(WED_10),
                        })
                        .is_ok_and(|d| d.allow)
                    })
                    .collect();
                let by_what = what
                    .iter()
                    .find(|a| a.asset == asset)
                    .map_or(ActionSet::EMPTY, |a| a.actions);
                let by_who = e
                    .who_can_access(asset, &at)
                    .unwrap_or_default()
                    .iter()
                    .find(|w| w.person == person)
                    .map_or(ActionSet::EMPTY, |w| w.actions);
                assert_eq!(by_what, by_decide, "{person} {asset}");
                assert_eq!(by_who, by_decide, "{person} {asset}");
            }
        }
    }

    #[test]
    fn reasons_have_codes_and_parseable_clauses() {
        let reasons = [
            Reason::GeneralOwnUnit,
            Reason::Granted(GrantId(1)),
            Reason::SecurityManager,
            Reason::DelegatedOperator,
            Reason::PersonInactive(PersonStatus::Disabled),
            Reason::PersonInactive(PersonStatus::Retired),
            Reason::PersonInactive(PersonStatus::Locked),
            Reason::ExplicitDeny(DenyId(1)),
            Reason::NotAdministrator,
            Reason::GrantNotInEffect(GrantId(1)),
            Reason::SecretExportNeedsExportGrant,
            Reason::SecretNeedsGrant,
            Reason::NoGrant,
        ];
        let codes: Vec<&str> = reasons.iter().map(|r| r.code()).collect();
        assert_eq!(codes, ALL_REASON_CODES);
        for r in reasons {
            assert_eq!(r.allows(), r.code().starts_with("access.allow."), "{r:?}");
            assert!(!r.clauses().is_empty());
            for c in r.clauses() {
                assert!(c.parse::<ClauseId>().is_ok(), "{c}");
            }
        }
        for g in [SecretGround::SecretDocument, SecretGround::SystemOperation] {
            assert!(g.clause().parse::<ClauseId>().is_ok());
        }
    }
}
