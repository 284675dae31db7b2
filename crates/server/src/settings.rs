//! Ward settings kept in the database, each change a record (K17.4: the
//! security manager sets the password validity period).

use crate::db::Conn;
use sqlx::Row;

/// A setting the ward can change, with its default and bounds.
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    pub key: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    pub clause: &'static str,
}

/// Every integer setting. 0 for the expiry turns it off (not advised: K17.4).
pub const DEFS: &[SettingDef] = &[
    SettingDef {
        key: "password.max_age_days",
        default: 180,
        min: 0,
        max: 3650,
        clause: "K17.4",
    },
    SettingDef {
        key: "password.warn_days",
        default: 14,
        min: 0,
        max: 365,
        clause: "K17.4",
    },
    SettingDef {
        key: "password.history",
        default: 5,
        min: 0,
        max: 24,
        clause: "K11.1.5",
    },
    // K30.2: designated viewers are kept to the minimum; a unit above this
    // shows a warning on the search and viewing-report pages.
    SettingDef {
        key: "ledger.max_viewers_per_unit",
        default: 2,
        min: 1,
        max: 20,
        clause: "K30.2",
    },
    // K16.2.1: access records are kept 「一定の期間」; after it a record's
    // content is pruned (its leaf hash stays, so every proof still holds).
    // The floor is one year for both, so 0 never means "delete at once"
    // and the periodic monitoring (K16.2.3), inspection and audit (K32) can
    // always read back a full year. Secret (秘密情報) records default to
    // five years (a usual keeping period of official documents, and longer
    // than the three-year 公訴時効 of offences under 不正アクセス禁止法, so
    // the records can still serve an investigation); general (一般情報)
    // records to the one-year floor. Secret records are never pruned
    // before general ones: the pruning job keeps them for the larger of
    // the two. Records frozen as evidence keep their content in the
    // bundle (K27.1.3).
    SettingDef {
        key: "ledger.retention_days.secret",
        default: 1826,
        min: 365,
        max: 36500,
        clause: "K16.2.1",
    },
    SettingDef {
        key: "ledger.retention_days.general",
        default: 365,
        min: 365,
        max: 36500,
        clause: "K16.2.1",
    },
    // K18: admin rights are held by the security manager and the
    // 「必要最小限」 of named 運用管理者; an asset with more holders than this
    // is flagged on its manager's pages and in the compliance checks.
    SettingDef {
        key: "access.admin_limit_per_system",
        default: 3,
        min: 1,
        max: 20,
        clause: "K18",
    },
    // K3.2.1, K17.2: access rights are reviewed (棚卸し) at least this
    // often; an asset with grants (or 秘密情報) not reviewed within it is
    // flagged as overdue.
    SettingDef {
        key: "access.review_interval_days",
        default: 365,
        min: 30,
        max: 1826,
        clause: "K3.2.1",
    },
    // K10.1–3: 「速やかに」. Each step of the reporting chain must be passed
    // on within these minutes of reaching its holder; past that it is
    // flagged and escalated to the next one up (`incidents::service::escalate_overdue`).
    SettingDef {
        key: "incident.deadline_minutes.manager",
        default: 60,
        min: 5,
        max: 10080,
        clause: "K10.2",
    },
    SettingDef {
        key: "incident.deadline_minutes.director",
        default: 120,
        min: 5,
        max: 10080,
        clause: "K10.3",
    },
    SettingDef {
        key: "incident.deadline_minutes.cio",
        default: 240,
        min: 5,
        max: 10080,
        clause: "K10.3",
    },
    // Issue 7: the automatic compliance checks run this often (and on
    // demand); every run is kept, so the dashboard shows since when a check
    // fails.
    SettingDef {
        key: "compliance.check_interval_minutes",
        default: 60,
        min: 5,
        max: 10080,
        clause: "K32.1",
    },
    // K16.2.2: the ledger's full verification (every 10 minutes by
    // default) must have run within this many hours, else the check fails.
    SettingDef {
        key: "compliance.ledger_verify_max_age_hours",
        default: 24,
        min: 1,
        max: 720,
        clause: "K16.2.2",
    },
    // Largest attachment to a report, in KiB (the request limit is 12 MiB).
    SettingDef {
        key: "incident.attachment_max_kb",
        default: 10240,
        min: 16,
        max: 10240,
        clause: "K10.1",
    },
    // K32.1: largest evidence file of a self-inspection answer, in KiB
    // (the request limit is 12 MiB).
    SettingDef {
        key: "inspection.evidence_max_kb",
        default: 10240,
        min: 16,
        max: 10240,
        clause: "K32.1",
    },
];

pub fn def(key: &str) -> Option<&'static SettingDef> {
    DEFS.iter().find(|d| d.key == key)
}

pub async fn get(conn: &mut Conn, key: &str) -> Result<i64, sqlx::Error> {
    let default = def(key).map(|d| d.default).unwrap_or(0);
    let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(match row {
        Some(r) => r.try_get::<String, _>(0)?.parse().unwrap_or(default),
        None => default,
    })
}

pub async fn password_max_age_days(conn: &mut Conn) -> Result<i64, sqlx::Error> {
    get(conn, "password.max_age_days").await
}

pub async fn put(
    conn: &mut Conn,
    key: &str,
    value: i64,
    by: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, set_by, set_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, set_by = excluded.set_by, set_at = excluded.set_at",
    )
    .bind(key)
    .bind(value.to_string())
    .bind(by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// All settings with their current values.
pub async fn all(conn: &mut Conn) -> Result<Vec<(&'static SettingDef, i64)>, sqlx::Error> {
    let mut out = Vec::new();
    for d in DEFS {
        out.push((d, get(conn, d.key).await?));
    }
    Ok(out)
}
