//! Search and analysis of the access-record ledger (K16.2.3: 定期的にアクセス
//! 記録等を監視、分析すること) and the restricted viewing of staff records
//! (K30): the rules, their transactions, and their SQL (`store` below).
//!
//! Everything reads the search index `ledger_index`, one row per record
//! (idx, time, system, actor, action, asset, result); a record's content
//! (source address, detail) is read from the log only when a designated
//! viewer opens it, and, for the failed-login analysis, to group failures
//! by source address without showing any record.
//!
//! ## Who sees what
//! - Analysis (`AnalyzeLedger`) returns counts only. With a unit scope (a
//!   セキュリティ管理者) only records whose actor is on the unit's staff are
//!   counted (see "staff of a unit" below); ward-wide roles count all.
//! - Search and opening a record (`ViewStaffRecords`, only 指名閲覧者) return
//!   only records whose actor is on the staff of the units the viewer was
//!   designated for (K30.2). Every search and every opening, allowed or not,
//!   is itself a record (`ledger.search`, `ledger.view`, clause K30.2) whose
//!   detail holds the filters or the index, never record content; the
//!   results are returned only once that record is committed.
//! - Viewers file a report on each viewing session (K30.3); their manager
//!   reads it (`ReadViewingReports`). The number of viewers per unit is
//!   shown against the ward's limit (`ledger.max_viewers_per_unit`, K30.2:
//!   必要最低限の数).
//!
//! ## Staff of a unit
//! An actor is on the staff of a set of units (the scope's units and every
//! unit below them) when it is `person:<id>` of a person whose current unit
//! is one of them, `account:<id>` of such a person's account (failed logins
//! name the account), or `account:<id>` of a shared account kept for one of
//! them. Units are those of today: a person who moved takes their past
//! records with them. Actors that ward systems name otherwise (e.g. by an
//! employee number) belong to no unit and are seen only ward-wide.
//!
//! ## The analyses, exactly
//! Times are Japan Standard Time; `from` is inclusive, `to` exclusive.
//! - `hourly`, `daily`: records per hour / per JST calendar day in the
//!   range (at most 31 days hourly, 400 days daily), every bucket listed.
//! - `off_hours`: records on Saturdays and Sundays, or on weekdays before
//!   [`WORK_START_MINUTE`] (8:30) or from [`WORK_END_MINUTE`] (18:15) on.
//!   National holidays are not known to Mamori and count as weekdays.
//!   Grouped by actor, with the off-hours records per day.
//! - `bulk`: an actor with more than [`BULK_RECORDS`] (100) records within
//!   [`BULK_WINDOW_SECS`] (10 minutes): a record is flagged when the 100th
//!   record before it by the same actor is less than 10 minutes older
//!   (a sliding window). Grouped by actor: flagged records, first and last.
//! - `outside_unit`: records whose actor is `person:<id>` and whose asset
//!   names `person:<id>`, `account:<id>` or `org_unit:<id>` belonging to a
//!   unit that is neither the actor's own unit nor below it (the asset's
//!   unit: the person's, the account holder's or the shared account's, or
//!   the unit itself; as of today). Records about oneself are not flagged.
//!   Free-form assets of ward systems (`patron/123`) cannot be placed in a
//!   unit and are not examined. Grouped by actor with the units reached.
//! - `failed_logins`: records with action `auth.login` and result
//!   `failure`, grouped by actor and, from the newest
//!   [`MAX_SOURCE_SCAN`] (1,000) of them, by source address.
//! - `admin_actions`: Mamori's own records (system `mamori`) whose action
//!   starts with one of [`ADMIN_PREFIXES`] (accounts, roles, forced
//!   password changes, settings, org units), grouped by action and actor.

use crate::app::AppState;
use crate::auth::{Actor, ActorScope};
use crate::clock::JST;
use crate::db::Conn;
use crate::records::{self, Outcome, Record};
use crate::web::error::{AppError, FieldError};
use mamori_ledger::{AccessRecord, AccessResult};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime};
use utoipa::ToSchema;

/// Results per page unless asked otherwise, and at most.
pub const PAGE_SIZE: i64 = 100;
pub const MAX_PAGE_SIZE: i64 = 500;

/// Working hours in JST, minutes after midnight: 8:30 to 18:15 on weekdays
/// (the ward's office hours). Records outside them, and on Saturdays and
/// Sundays, are off-hours.
pub const WORK_START_MINUTE: i64 = 8 * 60 + 30;
pub const WORK_END_MINUTE: i64 = 18 * 60 + 15;

/// Bulk access: more than this many records by one actor ...
pub const BULK_RECORDS: i64 = 100;
/// ... within this many seconds. A person reading 100 records in 10 minutes
/// (one every 6 seconds, sustained) is beyond ordinary counter work and is
/// what bulk copying or a script looks like.
pub const BULK_WINDOW_SECS: i64 = 600;

/// Action prefixes of Mamori's own records that change accounts, roles,
/// passwords by force, settings or the organisation.
pub const ADMIN_PREFIXES: &[&str] = &[
    "account.",
    "role.",
    "password.force_change",
    "settings.",
    "org_unit.",
];

/// Newest failed logins whose source address is read for grouping.
pub const MAX_SOURCE_SCAN: i64 = 1000;
/// Longest range for the hourly histogram and for everything else, in days.
pub const MAX_HOURLY_DAYS: i64 = 31;
pub const MAX_RANGE_DAYS: i64 = 400;
/// Groups listed per analysis.
pub const MAX_GROUPS: i64 = 50;
/// Longest report summary, in characters.
pub const MAX_SUMMARY: usize = 2000;

const US: i64 = 1_000_000;
const HOUR_US: i64 = 3600 * US;
const DAY_US: i64 = 24 * HOUR_US;
/// JST is UTC+9 all year.
const JST_US: i64 = 9 * HOUR_US;

// ---------------------------------------------------------------------------
// Filters

/// The filters as typed (query string or form), before checking.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct FilterInput {
    pub actor: Option<String>,
    pub asset: Option<String>,
    pub system: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Checked filters; also what a `ledger.search` record says was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// A prefix of the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Unix microseconds, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_us: Option<i64>,
    /// Unix microseconds, exclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_us: Option<i64>,
}

/// Control characters removed (PostgreSQL refuses NUL; no stored value
/// holds any), trimmed, empty as none, at most `max` characters.
fn clean_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Option<String> {
    let s: String = value
        .as_deref()?
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "field.too_long",
            &[("max", max.to_string())],
        ));
        return None;
    }
    Some(s.to_string())
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// A moment as typed: RFC 3339 (`2026-11-29T09:30:00+09:00`), a JST local
/// time (`2026-11-29T09:30`, `2026-11-29 09:30:15`), or a date
/// (`2026-11-29`, `令和8年11月29日`, `R8.11.29`) meaning its JST midnight, or
/// with `end_of_day` the next midnight (so `to=2026-11-29` includes that day).
pub fn parse_instant(s: &str, end_of_day: bool) -> Option<i64> {
    parse_any_instant(s, end_of_day).filter(|t| (EARLIEST_US..=LATEST_US).contains(t))
}

/// Moments accepted: from the day before the Unix epoch to about the year
/// 9000, so every range, bucket and default end stays representable.
const EARLIEST_US: i64 = -DAY_US;
const LATEST_US: i64 = 221_800_000_000 * US;

fn parse_any_instant(s: &str, end_of_day: bool) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(micros(t));
    }
    let local = [
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]"),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    ];
    for f in local {
        if let Ok(p) = PrimitiveDateTime::parse(s, &f) {
            return Some(micros(p.assume_offset(JST)));
        }
    }
    let d = mamori_policy::wareki::parse_date(s)?;
    let d = if end_of_day { d.next_day()? } else { d };
    Some(micros(d.midnight().assume_offset(JST)))
}

fn time_field(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &Option<String>,
    end_of_day: bool,
) -> Option<i64> {
    let raw: String = value
        .as_deref()?
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if raw.trim().is_empty() {
        return None;
    }
    let t = parse_instant(&raw, end_of_day);
    if t.is_none() {
        errors.push(FieldError::new(
            field,
            "ledger.search.bad_time",
            &[("value", raw.trim().chars().take(40).collect())],
        ));
    }
    t
}

impl FilterInput {
    /// Checks every field; each problem names its field.
    pub fn check(&self, errors: &mut Vec<FieldError>) -> Filter {
        use mamori_ledger::record::{MAX_ACTION, MAX_ACTOR, MAX_ASSET, MAX_SYSTEM};
        let result = clean_text(errors, "result", &self.result, 16);
        let result = match result {
            Some(r) if AccessResult::parse(&r).is_none() => {
                errors.push(FieldError::new("result", "ledger.search.bad_result", &[]));
                None
            }
            r => r,
        };
        let f = Filter {
            actor: clean_text(errors, "actor", &self.actor, MAX_ACTOR),
            asset: clean_text(errors, "asset", &self.asset, MAX_ASSET),
            system: clean_text(errors, "system", &self.system, MAX_SYSTEM),
            action: clean_text(errors, "action", &self.action, MAX_ACTION),
            result,
            from_us: time_field(errors, "from", &self.from, false),
            to_us: time_field(errors, "to", &self.to, true),
        };
        if let (Some(a), Some(b)) = (f.from_us, f.to_us) {
            if a >= b {
                errors.push(FieldError::new("to", "ledger.search.to_before_from", &[]));
            }
        }
        f
    }
}

/// Where a search or analysis may look: the whole ward, or the staff of
/// these units (already expanded to every unit below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Within {
    Ward,
    Units(Vec<i64>),
}

impl Within {
    pub async fn of(conn: &mut Conn, scope: &ActorScope) -> Result<Within, sqlx::Error> {
        Ok(match crate::people::api::scope_units(conn, scope).await? {
            None => Within::Ward,
            Some(units) => {
                let mut u: Vec<i64> = units.into_iter().map(|u| u.0).collect();
                u.sort_unstable();
                u.dedup();
                Within::Units(u)
            }
        })
    }

    fn units(&self) -> Option<&[i64]> {
        match self {
            Within::Ward => None,
            Within::Units(u) => Some(u),
        }
    }
}

// ---------------------------------------------------------------------------
// Times

/// RFC 3339 in JST.
pub fn rfc3339_jst(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.to_offset(JST).format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// (`YYYY-MM-DD`, `HH:MM:SS`) in JST, for pages (the date goes through the
/// `wareki` filter in Japanese).
pub fn jst_parts(us: i64) -> (String, String) {
    match OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000) {
        Ok(t) => {
            let t = t.to_offset(JST);
            (
                crate::clock::date_str(t.date()),
                format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
            )
        }
        Err(_) => (String::new(), String::new()),
    }
}

/// JST midnight starting the day that holds `us`.
fn day_start(us: i64) -> i64 {
    (us + JST_US).div_euclid(DAY_US) * DAY_US - JST_US
}

// ---------------------------------------------------------------------------
// Search and viewing (K30)

/// One record as the search index holds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Hit {
    pub index: u64,
    /// RFC 3339 in JST.
    pub time: String,
    pub time_us: i64,
    pub system: String,
    pub actor: String,
    pub action: String,
    pub asset: String,
    pub result: String,
}

/// One page of results.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchPage {
    /// Newest first.
    pub records: Vec<Hit>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<u64>,
    /// The `ledger.search` record this search left.
    pub record_id: i64,
}

fn record_time(state: &AppState) -> i64 {
    state.clock().unix_micros()
}

async fn append_one(state: &AppState, rec: &Record) -> Result<i64, AppError> {
    let mut tx = state.db().begin().await?;
    let id = records::append(&mut tx, record_time(state), rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(id)
}

/// Searches staff records newest first (K30.2). The results are returned
/// only after the search's own record is committed.
pub async fn search(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    filter: &Filter,
    before: Option<u64>,
    limit: i64,
) -> Result<SearchPage, AppError> {
    let limit = limit.clamp(1, MAX_PAGE_SIZE);
    let (within, mut hits) = {
        let mut conn = state.db().pool().acquire().await?;
        let within = Within::of(&mut conn, scope).await?;
        let cursor = match before {
            None => None,
            Some(b) => {
                let b = i64::try_from(b).unwrap_or(i64::MAX);
                match store::time_of(&mut conn, b).await? {
                    Some(t) => Some((t, b)),
                    None => {
                        return Err(AppError::invalid("before", "ledger.search.bad_cursor", &[]))
                    }
                }
            }
        };
        let hits = store::search(&mut conn, filter, &within, cursor, limit + 1).await?;
        (within, hits)
    };
    let more = hits.len() as i64 > limit;
    hits.truncate(limit as usize);
    let next_before = if more {
        hits.last().map(|h| h.index)
    } else {
        None
    };
    let rec = Record::new(actor.who(), "ledger.search", "ledger", "K30.2")
        .from_ip(actor.ip())
        .detail(serde_json::json!({
            "filter": filter, "before": before, "limit": limit,
            "units": within.units(), "returned": hits.len(),
        }));
    let record_id = append_one(state, &rec).await?;
    Ok(SearchPage {
        records: hits,
        next_before,
        record_id,
    })
}

/// A record as a designated viewer sees it.
pub type RecordView = super::api::RecordView;

/// Opens one record (K30.2): only a record whose actor is on the staff of
/// the viewer's units; anything else is "not found", so a viewer learns
/// nothing of other units. Every attempt is a `ledger.view` record.
pub async fn view(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    index: u64,
) -> Result<RecordView, AppError> {
    let idx = i64::try_from(index).unwrap_or(i64::MAX);
    let (within, visible) = {
        let mut conn = state.db().pool().acquire().await?;
        let within = Within::of(&mut conn, scope).await?;
        let visible = store::visible(&mut conn, idx, &within).await?;
        (within, visible)
    };
    let rec = |outcome: Outcome, reason: Option<&str>| {
        Record::new(
            actor.who(),
            "ledger.view",
            format!("ledger:{index}"),
            "K30.2",
        )
        .from_ip(actor.ip())
        .outcome(outcome)
        .detail(serde_json::json!({ "index": index, "units": within.units(), "reason": reason }))
    };
    if !visible {
        append_one(
            state,
            &rec(Outcome::Denied, Some("not_found_or_out_of_scope")),
        )
        .await?;
        return Err(AppError::NotFound("record"));
    }
    let bytes = state
        .ledger()
        .read_entries(index, 1)
        .await
        .map_err(AppError::from)?
        .pop()
        .flatten();
    let Some(bytes) = bytes else {
        append_one(state, &rec(Outcome::Failure, Some("pruned"))).await?;
        return Err(AppError::NotFound("record (pruned)"));
    };
    let r = AccessRecord::decode(&bytes)
        .map_err(|e| AppError::Internal(format!("record {index} does not decode: {e}")))?;
    append_one(state, &rec(Outcome::Success, None)).await?;
    use base64::Engine;
    Ok(RecordView {
        index,
        time: rfc3339_jst(r.time_micros),
        system: r.system,
        event_id: r.event_id,
        actor: r.actor,
        action: r.action,
        asset: r.asset,
        result: r.result.as_str().into(),
        source_ip: r.source_address,
        detail: r.detail.and_then(|d| serde_json::from_str(&d).ok()),
        leaf_hash: base64::engine::general_purpose::STANDARD
            .encode(mamori_ledger::Hash::leaf(&bytes).0),
    })
}

/// Display names of `person:<id>` and `account:<id>` actors.
pub async fn names(conn: &mut Conn, actors: &[&str]) -> Result<HashMap<String, String>, AppError> {
    let mut persons = Vec::new();
    let mut accounts = Vec::new();
    for a in actors {
        if let Some(id) = a
            .strip_prefix("person:")
            .and_then(|n| n.parse::<i64>().ok())
        {
            persons.push(id);
        } else if let Some(id) = a
            .strip_prefix("account:")
            .and_then(|n| n.parse::<i64>().ok())
        {
            accounts.push(id);
        }
    }
    persons.sort_unstable();
    persons.dedup();
    accounts.sort_unstable();
    accounts.dedup();
    let mut out = HashMap::new();
    for (id, name) in store::person_names(conn, &persons).await? {
        out.insert(format!("person:{id}"), name);
    }
    for (id, name) in store::account_names(conn, &accounts).await? {
        out.insert(format!("account:{id}"), name);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Analysis (K16.2.3)

/// A canned analysis or a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Hourly,
    Daily,
    OffHours,
    Bulk,
    OutsideUnit,
    FailedLogins,
    AdminActions,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Daily,
        Kind::Hourly,
        Kind::OffHours,
        Kind::Bulk,
        Kind::OutsideUnit,
        Kind::FailedLogins,
        Kind::AdminActions,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Kind::Hourly => "hourly",
            Kind::Daily => "daily",
            Kind::OffHours => "off_hours",
            Kind::Bulk => "bulk",
            Kind::OutsideUnit => "outside_unit",
            Kind::FailedLogins => "failed_logins",
            Kind::AdminActions => "admin_actions",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == s)
    }

    /// The range used when none is given, in days (ending with today).
    fn default_days(self) -> i64 {
        match self {
            Kind::Hourly => 1,
            _ => 30,
        }
    }

    fn max_days(self) -> i64 {
        match self {
            Kind::Hourly => MAX_HOURLY_DAYS,
            _ => MAX_RANGE_DAYS,
        }
    }
}

/// Records in one hour or day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bucket {
    /// Start of the bucket, RFC 3339 in JST.
    pub start: String,
    pub start_us: i64,
    pub count: i64,
}

/// A unit reached by an actor outside their own (the `outside_unit` analysis).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reached {
    pub org_unit_id: i64,
    pub org_unit_name: String,
    pub records: i64,
}

/// One line of an analysis: counts for an actor, an action or a source.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Group {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The actor's name, when the actor is a person or an account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub count: i64,
    /// First and last record counted, RFC 3339 in JST.
    pub first: String,
    pub last: String,
    pub first_us: i64,
    pub last_us: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reached: Vec<Reached>,
}

/// The result of an analysis: counts only, no record.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Analysis {
    pub kind: Kind,
    /// The range, RFC 3339 in JST; `from` inclusive, `to` exclusive.
    pub from: String,
    pub to: String,
    pub from_us: i64,
    pub to_us: i64,
    /// Whether every record counted; otherwise only those of the staff of `units`.
    pub ward_wide: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<i64>,
    /// Records in the range that match the filters (and scope).
    pub total: i64,
    /// Of those, the records the analysis flags (all of them for the histograms).
    pub matched: i64,
    /// Bucket width in seconds (3600 or 86400) when there are buckets.
    pub bucket_secs: Option<i64>,
    pub buckets: Vec<Bucket>,
    pub groups: Vec<Group>,
    /// Failed logins by source address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Group>,
    /// More groups exist than are listed, or not every source was read.
    pub truncated: bool,
    /// The thresholds used.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
}

/// The range an analysis covers, from the filters and the kind's defaults.
pub fn analysis_range(kind: Kind, f: &Filter, now_us: i64) -> Result<(i64, i64), AppError> {
    let len = kind.default_days() * DAY_US;
    let (from, to) = match (f.from_us, f.to_us) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, a.saturating_add(len)),
        (None, Some(b)) => (b.saturating_sub(len), b),
        (None, None) => {
            let end = day_start(now_us) + DAY_US;
            (end - len, end)
        }
    };
    if to <= from {
        return Err(AppError::invalid("to", "ledger.search.to_before_from", &[]));
    }
    if to - from > kind.max_days() * DAY_US {
        return Err(AppError::invalid(
            "to",
            "ledger.analysis.range_too_long",
            &[("days", kind.max_days().to_string())],
        ));
    }
    Ok((from, to))
}

fn dense(rows: &[(i64, i64)], from: i64, to: i64, width: i64) -> Vec<Bucket> {
    // The bucket number as the SQL computes it: (t + JST) / width, truncated.
    let bucket = |t: i64| (t + JST_US) / width;
    let counts: HashMap<i64, i64> = rows.iter().copied().collect();
    (bucket(from)..=bucket(to - 1))
        .map(|b| {
            let start = b * width - JST_US;
            Bucket {
                start: rfc3339_jst(start),
                start_us: start,
                count: counts.get(&b).copied().unwrap_or(0),
            }
        })
        .collect()
}

fn group(actor: Option<String>, count: i64, first: i64, last: i64) -> Group {
    Group {
        actor,
        count,
        first: rfc3339_jst(first),
        last: rfc3339_jst(last),
        first_us: first,
        last_us: last,
        ..Default::default()
    }
}

/// Runs one analysis (K16.2.3). It opens no record (the failed-login
/// analysis reads source addresses only to count them), and leaves a
/// `ledger.analyze` record as evidence of the monitoring.
pub async fn analyse(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    kind: Kind,
    filter: &Filter,
) -> Result<Analysis, AppError> {
    let (from, to) = analysis_range(kind, filter, state.clock().unix_micros())?;
    let mut f = filter.clone();
    f.from_us = Some(from);
    f.to_us = Some(to);
    let mut conn = state.db().pool().acquire().await?;
    let within = Within::of(&mut conn, scope).await?;
    let extra = match kind {
        Kind::Hourly | Kind::Daily | Kind::Bulk | Kind::OutsideUnit => store::Extra::None,
        Kind::OffHours => store::Extra::OffHours,
        Kind::FailedLogins => store::Extra::FailedLogins,
        Kind::AdminActions => store::Extra::AdminActions,
    };
    let width = match kind {
        Kind::Hourly => Some(HOUR_US),
        Kind::Bulk | Kind::OutsideUnit => None,
        _ => Some(DAY_US),
    };
    let bucket_rows = match width {
        Some(w) => Some(store::buckets(&mut conn, &f, &within, extra, w).await?),
        None => None,
    };
    // Plain histograms count every record in a bucket: no second pass.
    let (total, mut matched) = match (&bucket_rows, extra) {
        (Some(rows), store::Extra::None) => {
            let n = rows.iter().map(|r| r.1).sum();
            (n, n)
        }
        _ => store::counts(&mut conn, &f, &within, extra).await?,
    };
    let mut out = Analysis {
        kind,
        from: rfc3339_jst(from),
        to: rfc3339_jst(to),
        from_us: from,
        to_us: to,
        ward_wide: within == Within::Ward,
        units: within.units().map(|u| u.to_vec()).unwrap_or_default(),
        total,
        matched,
        bucket_secs: None,
        buckets: vec![],
        groups: vec![],
        sources: vec![],
        truncated: false,
        parameters: serde_json::json!({}),
    };
    if let (Some(w), Some(rows)) = (width, &bucket_rows) {
        out.buckets = dense(rows, from, to, w);
        out.bucket_secs = Some(w / US);
    }
    match kind {
        Kind::Hourly | Kind::Daily => {}
        Kind::OffHours | Kind::FailedLogins => {
            let rows = store::by_actor(&mut conn, &f, &within, extra, MAX_GROUPS + 1).await?;
            out.truncated = rows.len() as i64 > MAX_GROUPS;
            out.groups = rows
                .into_iter()
                .take(MAX_GROUPS as usize)
                .map(|(a, n, x, y)| group(Some(a), n, x, y))
                .collect();
            if kind == Kind::OffHours {
                out.parameters = serde_json::json!({
                    "work_start": format!("{:02}:{:02}", WORK_START_MINUTE / 60, WORK_START_MINUTE % 60),
                    "work_end": format!("{:02}:{:02}", WORK_END_MINUTE / 60, WORK_END_MINUTE % 60),
                    "weekend_days": ["saturday", "sunday"], "holidays_known": false,
                });
            } else {
                let idx = store::failed_indexes(&mut conn, &f, &within, MAX_SOURCE_SCAN).await?;
                if (idx.len() as i64) < matched {
                    out.truncated = true;
                }
                drop(conn);
                out.sources = failed_sources(state, &idx).await?;
                conn = state.db().pool().acquire().await?;
                out.parameters = serde_json::json!({ "action": "auth.login", "result": "failure", "sources_read": idx.len(), "max_sources_read": MAX_SOURCE_SCAN });
            }
        }
        Kind::AdminActions => {
            let rows = store::by_action_actor(&mut conn, &f, &within, MAX_GROUPS + 1).await?;
            out.truncated = rows.len() as i64 > MAX_GROUPS;
            out.groups = rows
                .into_iter()
                .take(MAX_GROUPS as usize)
                .map(|(action, a, n, x, y)| Group {
                    action: Some(action),
                    ..group(Some(a), n, x, y)
                })
                .collect();
            out.parameters = serde_json::json!({ "system": "mamori", "prefixes": ADMIN_PREFIXES });
        }
        Kind::Bulk => {
            matched = store::bulk_count(&mut conn, &f, &within).await?;
            out.matched = matched;
            let rows = store::bulk(&mut conn, &f, &within, MAX_GROUPS + 1).await?;
            out.truncated = rows.len() as i64 > MAX_GROUPS;
            out.groups = rows
                .into_iter()
                .take(MAX_GROUPS as usize)
                .map(|(a, n, x, y)| group(Some(a), n, x, y))
                .collect();
            out.parameters = serde_json::json!({ "more_than_records": BULK_RECORDS, "window_seconds": BULK_WINDOW_SECS });
        }
        Kind::OutsideUnit => {
            let (groups, flagged, truncated) = outside_unit(&mut conn, &f, &within).await?;
            out.matched = flagged;
            out.groups = groups;
            out.truncated = truncated;
            out.parameters = serde_json::json!({ "actor": "person:<id>", "assets": ["person:<id>", "account:<id>", "org_unit:<id>"] });
        }
    }
    let actors: Vec<&str> = out
        .groups
        .iter()
        .filter_map(|g| g.actor.as_deref())
        .collect();
    let names = names(&mut conn, &actors).await?;
    drop(conn);
    for g in &mut out.groups {
        g.name = g.actor.as_ref().and_then(|a| names.get(a).cloned());
    }
    let rec = Record::new(actor.who(), "ledger.analyze", "ledger", "K16.2.3")
        .from_ip(actor.ip())
        .detail(serde_json::json!({ "kind": kind.code(), "filter": f, "units": within.units() }));
    append_one(state, &rec).await?;
    Ok(out)
}

/// Failed logins by source address, from the records' content (counts only).
async fn failed_sources(state: &AppState, idx: &[(i64, i64)]) -> Result<Vec<Group>, AppError> {
    let mut by: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for (i, _) in idx {
        let entry = state
            .ledger()
            .read_entries(*i as u64, 1)
            .await
            .map_err(AppError::from)?
            .pop()
            .flatten();
        let Some(r) = entry.and_then(|b| AccessRecord::decode(&b).ok()) else {
            continue;
        };
        let source = r.source_address.unwrap_or_else(|| "-".into());
        let e = by
            .entry(source)
            .or_insert((0, r.time_micros, r.time_micros));
        e.0 += 1;
        e.1 = e.1.min(r.time_micros);
        e.2 = e.2.max(r.time_micros);
    }
    let mut out: Vec<Group> = by
        .into_iter()
        .map(|(s, (n, a, b))| Group {
            source: Some(s),
            ..group(None, n, a, b)
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.source.cmp(&b.source)));
    out.truncate(MAX_GROUPS as usize);
    Ok(out)
}

/// Groups of ( actor → units reached outside their own ).
async fn outside_unit(
    conn: &mut Conn,
    f: &Filter,
    within: &Within,
) -> Result<(Vec<Group>, i64, bool), AppError> {
    const MAX_PAIRS: i64 = 20_000;
    let pairs = store::person_asset_pairs(conn, f, within, MAX_PAIRS + 1).await?;
    let truncated = pairs.len() as i64 > MAX_PAIRS;
    let units = store::units(conn).await?;
    let persons = store::person_units(conn).await?;
    let accounts = store::account_units(conn).await?;
    // Is `unit` the actor's unit or below it?
    let inside = |actor_unit: i64, unit: i64| -> bool {
        let mut at = Some(unit);
        for _ in 0..64 {
            match at {
                Some(u) if u == actor_unit => return true,
                Some(u) => at = units.get(&u).and_then(|(p, _)| *p),
                None => return false,
            }
        }
        false
    };
    let id_of = |s: &str, prefix: &str| s.strip_prefix(prefix).and_then(|n| n.parse::<i64>().ok());
    struct Acc {
        count: i64,
        first: i64,
        last: i64,
        reached: BTreeMap<i64, i64>,
    }
    let mut by: BTreeMap<String, Acc> = BTreeMap::new();
    let mut flagged = 0;
    for (actor, asset, n, first, last) in pairs.into_iter().take(MAX_PAIRS as usize) {
        if actor == asset {
            continue;
        }
        let Some(actor_unit) =
            id_of(&actor, "person:").and_then(|p| persons.get(&p).copied().flatten())
        else {
            continue;
        };
        let target = if let Some(p) = id_of(&asset, "person:") {
            persons.get(&p).copied().flatten()
        } else if let Some(a) = id_of(&asset, "account:") {
            accounts.get(&a).copied().flatten()
        } else {
            id_of(&asset, "org_unit:").filter(|u| units.contains_key(u))
        };
        let Some(target) = target else { continue };
        if inside(actor_unit, target) {
            continue;
        }
        flagged += n;
        let e = by.entry(actor).or_insert(Acc {
            count: 0,
            first,
            last,
            reached: BTreeMap::new(),
        });
        e.count += n;
        e.first = e.first.min(first);
        e.last = e.last.max(last);
        *e.reached.entry(target).or_insert(0) += n;
    }
    let mut groups: Vec<Group> = by
        .into_iter()
        .map(|(actor, a)| {
            let mut reached: Vec<Reached> = a
                .reached
                .into_iter()
                .map(|(u, n)| Reached {
                    org_unit_id: u,
                    org_unit_name: units
                        .get(&u)
                        .map(|(_, name)| name.clone())
                        .unwrap_or_default(),
                    records: n,
                })
                .collect();
            reached.sort_by_key(|r| std::cmp::Reverse(r.records));
            reached.truncate(10);
            Group {
                reached,
                ..group(Some(actor), a.count, a.first, a.last)
            }
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.actor.cmp(&b.actor)));
    let truncated = truncated || groups.len() as i64 > MAX_GROUPS;
    groups.truncate(MAX_GROUPS as usize);
    Ok((groups, flagged, truncated))
}

// ---------------------------------------------------------------------------
// Designated viewers and their reports (K30.2–3)

/// Designated viewers of one unit today, against the ward's limit.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewerCount {
    pub org_unit_id: i64,
    pub org_unit_name: String,
    pub viewers: i64,
    /// More viewers than `ledger.max_viewers_per_unit` (K30.2: the minimum needed).
    pub over_limit: bool,
}

/// Viewer counts for these units (all units with viewers when `None`), and the limit.
pub async fn viewer_counts(
    state: &AppState,
    units: Option<&[i64]>,
) -> Result<(Vec<ViewerCount>, i64), AppError> {
    let today = crate::clock::date_str(state.clock().today());
    let mut conn = state.db().pool().acquire().await?;
    let limit = crate::settings::get(&mut conn, "ledger.max_viewers_per_unit").await?;
    let rows = store::viewer_counts(&mut conn, units, &today).await?;
    Ok((
        rows.into_iter()
            .map(|(id, name, n)| ViewerCount {
                org_unit_id: id,
                org_unit_name: name,
                viewers: n,
                over_limit: n > limit,
            })
            .collect(),
        limit,
    ))
}

/// The units a viewer was designated for (their `ViewStaffRecords` scope).
pub fn viewer_units(scope: &ActorScope) -> Vec<i64> {
    match scope {
        ActorScope::Ward => vec![],
        ActorScope::Units(u) => u.iter().map(|u| u.0).collect(),
    }
}

/// A report a designated viewer filed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ViewingReport {
    pub id: i64,
    pub viewer_person_id: i64,
    pub viewer_name: String,
    pub org_unit_id: i64,
    pub org_unit_name: String,
    /// The viewing session, Unix seconds and RFC 3339 in JST.
    pub period_from: i64,
    pub period_to: i64,
    pub period_from_time: String,
    pub period_to_time: String,
    /// Searches made and records opened by the viewer in the period.
    pub searches: i64,
    pub summary: String,
    pub created_at: i64,
}

/// A report as the viewer files it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    /// The unit the viewing was for; may be left out when the viewer serves one unit.
    #[serde(default)]
    pub org_unit_id: Option<i64>,
    /// Start of the session (RFC 3339, JST local time or a date); by default
    /// the first search not yet reported.
    #[serde(default)]
    pub period_from: Option<String>,
    /// End of the session; by default now.
    #[serde(default)]
    pub period_to: Option<String>,
    /// What was viewed and why, under whose instruction (at most 2,000 characters).
    #[serde(default)]
    pub summary: String,
}

/// Actions a viewer's report counts.
const VIEWING_ACTIONS: [&str; 2] = ["ledger.search", "ledger.view"];

/// The default start of the next report: the first search or opening not
/// yet reported (after the end of the viewer's last report).
pub async fn unreported(state: &AppState, actor: &Actor) -> Result<(Option<i64>, i64), AppError> {
    let Some(person) = actor.person_id else {
        return Ok((None, 0));
    };
    let mut conn = state.db().pool().acquire().await?;
    let last_end = store::last_report_end(&mut conn, person.0)
        .await?
        .unwrap_or(0);
    let (first, n) = store::viewing_actions_since(
        &mut conn,
        &person.record_ref(),
        &VIEWING_ACTIONS,
        last_end.saturating_mul(US),
    )
    .await?;
    Ok((first.map(|us| us / US), n))
}

/// Files a viewer's report (K30.3) with its record, in one transaction.
pub async fn file_report(
    state: &AppState,
    actor: &Actor,
    scope: &ActorScope,
    input: &ReportInput,
) -> Result<ViewingReport, AppError> {
    let person = actor.person_id.ok_or(AppError::Forbidden("no_person"))?;
    let mine = viewer_units(scope);
    let now = state.clock().unix();
    let mut errors = Vec::new();
    crate::web::json::check_text(&mut errors, "summary", &input.summary, MAX_SUMMARY, true);
    let unit = match input.org_unit_id {
        Some(u) if mine.contains(&u) => Some(u),
        Some(_) => {
            errors.push(FieldError::new(
                "org_unit_id",
                "ledger.viewing.not_your_unit",
                &[],
            ));
            None
        }
        None if mine.len() == 1 => Some(mine[0]),
        None => {
            errors.push(FieldError::new("org_unit_id", "field.required", &[]));
            None
        }
    };
    let from = time_field(&mut errors, "period_from", &input.period_from, false)
        .map(|us| us.div_euclid(US));
    let to =
        time_field(&mut errors, "period_to", &input.period_to, true).map(|us| us.div_euclid(US));
    let to = to.unwrap_or(now);
    if to > now + 60 {
        errors.push(FieldError::new("period_to", "ledger.viewing.future", &[]));
    }
    crate::web::json::done(errors)?;
    let from = match from {
        Some(f) => f,
        None => unreported(state, actor).await?.0.unwrap_or(to).min(to),
    };
    if from > to {
        return Err(AppError::invalid(
            "period_to",
            "ledger.search.to_before_from",
            &[],
        ));
    }
    let unit = unit.unwrap_or_default();
    let summary = input.summary.trim();
    let mut tx = state.db().begin().await?;
    let searches = store::count_viewing_actions(
        &mut tx,
        &person.record_ref(),
        &VIEWING_ACTIONS,
        from.saturating_mul(US),
        to.saturating_add(1).saturating_mul(US),
    )
    .await?;
    let id =
        store::insert_report(&mut tx, person.0, unit, from, to, searches, summary, now).await?;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(summary.as_bytes()))
    };
    let rec = Record::new(
        actor.who(),
        "ledger.viewing_report",
        format!("viewing_report:{id}"),
        "K30.3",
    )
    .from_ip(actor.ip())
    .detail(serde_json::json!({
        "org_unit_id": unit, "period_from": from, "period_to": to, "searches": searches,
        "summary_sha256": digest, "summary_chars": summary.chars().count(),
    }));
    records::append(&mut tx, record_time(state), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    let mut conn = state.db().pool().acquire().await?;
    store::get_report(&mut conn, id)
        .await?
        .ok_or(AppError::NotFound("viewing report"))
}

/// Reports filed for the units in scope, newest first.
pub async fn list_reports(
    state: &AppState,
    scope: &ActorScope,
    limit: i64,
) -> Result<Vec<ViewingReport>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let within = Within::of(&mut conn, scope).await?;
    Ok(store::list_reports(&mut conn, within.units(), limit.clamp(1, 500)).await?)
}

// ---------------------------------------------------------------------------

/// All SQL of search, analysis and viewing reports. Filters are bound as
/// parameters; the only text put into SQL is fixed fragments and integer
/// constants of this module.
pub mod store {
    use super::{
        Filter, Hit, ViewingReport, Within, ADMIN_PREFIXES, BULK_RECORDS, BULK_WINDOW_SECS,
    };
    use super::{JST_US, US, WORK_END_MINUTE, WORK_START_MINUTE};
    use crate::db::Conn;
    use sqlx::any::AnyRow;
    use sqlx::Row;
    use std::collections::HashMap;

    enum Arg {
        Int(i64),
        Text(String),
    }

    /// SQL text with its numbered arguments.
    struct Sql {
        text: String,
        args: Vec<Arg>,
    }

    impl Sql {
        fn new(text: &str) -> Sql {
            Sql {
                text: text.to_string(),
                args: Vec::new(),
            }
        }

        fn push(&mut self, s: &str) {
            self.text.push_str(s);
        }

        fn int(&mut self, v: i64) -> String {
            self.args.push(Arg::Int(v));
            format!("${}", self.args.len())
        }

        fn text(&mut self, v: &str) -> String {
            self.args.push(Arg::Text(v.to_string()));
            format!("${}", self.args.len())
        }

        fn ints(&mut self, v: &[i64]) -> String {
            v.iter()
                .map(|i| self.int(*i))
                .collect::<Vec<_>>()
                .join(", ")
        }

        async fn fetch_all(&self, conn: &mut Conn) -> Result<Vec<AnyRow>, sqlx::Error> {
            let mut q = sqlx::query(&self.text);
            for a in &self.args {
                q = match a {
                    Arg::Int(i) => q.bind(*i),
                    Arg::Text(s) => q.bind(s.clone()),
                };
            }
            q.fetch_all(conn).await
        }
    }

    /// Actors on the staff of `units` (see the module docs), as a subquery.
    fn staff_actors(sql: &mut Sql, units: &[i64]) -> String {
        let list = sql.ints(units);
        format!(
            "SELECT 'person:' || CAST(p.id AS TEXT) FROM persons p WHERE p.org_unit_id IN ({list})
             UNION ALL SELECT 'account:' || CAST(a.id AS TEXT) FROM accounts a JOIN persons p ON p.id = a.person_id
               WHERE p.org_unit_id IN ({list})
             UNION ALL SELECT 'account:' || CAST(a.id AS TEXT) FROM accounts a WHERE a.shared_org_unit_id IN ({list})"
        )
    }

    /// ` AND …` for each filter and the scope. Exact matches on the indexed
    /// columns and a time range let both engines use the (column, time_us)
    /// indexes; the action prefix compares a substring, which behaves the
    /// same on both (LIKE is case-insensitive on SQLite only).
    fn conditions(sql: &mut Sql, f: &Filter, within: &Within) -> String {
        let mut out = String::new();
        for (col, v) in [
            ("li.actor", &f.actor),
            ("li.asset", &f.asset),
            ("li.system", &f.system),
            ("li.result", &f.result),
        ] {
            if let Some(v) = v {
                let p = sql.text(v);
                out.push_str(&format!(" AND {col} = {p}"));
            }
        }
        if let Some(prefix) = &f.action {
            let n = sql.int(prefix.chars().count() as i64);
            let p = sql.text(prefix);
            out.push_str(&format!(
                " AND substr(li.action, 1, CAST({n} AS INTEGER)) = {p}"
            ));
        }
        if let Some(t) = f.from_us {
            let p = sql.int(t);
            out.push_str(&format!(" AND li.time_us >= {p}"));
        }
        if let Some(t) = f.to_us {
            let p = sql.int(t);
            out.push_str(&format!(" AND li.time_us < {p}"));
        }
        match within {
            Within::Ward => {}
            Within::Units(u) if u.is_empty() => out.push_str(" AND 1 = 0"),
            Within::Units(u) => {
                let set = staff_actors(sql, u);
                out.push_str(&format!(" AND li.actor IN ({set})"));
            }
        }
        out
    }

    fn filter(sql: &mut Sql, f: &Filter, within: &Within) {
        let c = conditions(sql, f, within);
        sql.push(&c);
    }

    /// What an analysis flags, as a condition on `li`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Extra {
        None,
        OffHours,
        FailedLogins,
        AdminActions,
    }

    fn extra(sql: &mut Sql, e: Extra) -> String {
        match e {
            Extra::None => "1 = 1".into(),
            Extra::OffHours => {
                // Seconds since the Unix epoch in JST; day 0 was a Thursday,
                // so (day + 4) % 7 is 0 on Sundays and 6 on Saturdays.
                let s = format!("(li.time_us / {US} + {})", JST_US / US);
                format!(
                    "(({s} / 86400 + 4) % 7 IN (0, 6) OR {s} % 86400 < {} OR {s} % 86400 >= {})",
                    WORK_START_MINUTE * 60,
                    WORK_END_MINUTE * 60
                )
            }
            Extra::FailedLogins => {
                let a = sql.text("auth.login");
                let r = sql.text("failure");
                format!("(li.action = {a} AND li.result = {r})")
            }
            Extra::AdminActions => {
                let m = sql.text("mamori");
                let parts: Vec<String> = ADMIN_PREFIXES
                    .iter()
                    .map(|p| {
                        let t = sql.text(p);
                        format!("substr(li.action, 1, {}) = {t}", p.chars().count())
                    })
                    .collect();
                format!("(li.system = {m} AND ({}))", parts.join(" OR "))
            }
        }
    }

    fn hit(r: &AnyRow) -> Result<Hit, sqlx::Error> {
        let t: i64 = r.try_get(1)?;
        Ok(Hit {
            index: r.try_get::<i64, _>(0)?.max(0) as u64,
            time: super::rfc3339_jst(t),
            time_us: t,
            system: r.try_get(2)?,
            actor: r.try_get(3)?,
            action: r.try_get(4)?,
            asset: r.try_get(5)?,
            result: r.try_get(6)?,
        })
    }

    /// The time of a record (the search cursor).
    pub async fn time_of(conn: &mut Conn, idx: i64) -> Result<Option<i64>, sqlx::Error> {
        let r = sqlx::query("SELECT time_us FROM ledger_index WHERE idx = $1")
            .bind(idx)
            .fetch_optional(conn)
            .await?;
        r.map(|r| r.try_get(0)).transpose()
    }

    const HIT_COLUMNS: &str =
        "li.idx, li.time_us, li.system, li.actor, li.action, li.asset, li.result";

    /// ` AND …` for the cursor: the (time, index) of the last record of the
    /// previous page. `time_us <=` is there for the index; the rest is exact.
    fn after_cursor(sql: &mut Sql, cursor: Option<(i64, i64)>) -> String {
        match cursor {
            None => String::new(),
            Some((t, i)) => {
                let t = sql.int(t);
                let i = sql.int(i);
                format!(" AND li.time_us <= {t} AND (li.time_us < {t} OR li.idx < {i})")
            }
        }
    }

    /// Actors per statement when a unit's staff are searched one by one.
    const ACTORS_PER_STATEMENT: usize = 100;

    /// Newest first by time, then index.
    ///
    /// Ward-wide, one statement. Within units, each actor on their staff is
    /// searched on its own `(actor, time_us)` index, newest first and
    /// limited, and the branches are merged (UNION ALL, then in order here):
    /// the work is bounded by the page size times the staff, not by how
    /// many records the unit has, on both engines.
    pub async fn search(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        cursor: Option<(i64, i64)>,
        limit: i64,
    ) -> Result<Vec<Hit>, sqlx::Error> {
        let Some(units) = within.units() else {
            let mut sql = Sql::new(&format!(
                "SELECT {HIT_COLUMNS} FROM ledger_index li WHERE 1 = 1"
            ));
            filter(&mut sql, f, within);
            let c = after_cursor(&mut sql, cursor);
            sql.push(&c);
            let l = sql.int(limit);
            sql.push(&format!(" ORDER BY li.time_us DESC, li.idx DESC LIMIT {l}"));
            return sql.fetch_all(conn).await?.iter().map(hit).collect();
        };
        let mut actors = staff_actor_list(conn, units).await?;
        if let Some(a) = &f.actor {
            actors.retain(|x| x == a);
        }
        let rest = Filter {
            actor: None,
            ..f.clone()
        };
        let mut hits = Vec::new();
        for chunk in actors.chunks(ACTORS_PER_STATEMENT) {
            let mut sql = Sql::new("");
            let mut cond = conditions(&mut sql, &rest, &Within::Ward);
            cond.push_str(&after_cursor(&mut sql, cursor));
            let l = sql.int(limit);
            let branches: Vec<String> = chunk
                .iter()
                .enumerate()
                .map(|(n, a)| {
                    let p = sql.text(a);
                    format!(
                        "SELECT * FROM (SELECT {HIT_COLUMNS} FROM ledger_index li WHERE li.actor = {p}{cond}
                         ORDER BY li.time_us DESC, li.idx DESC LIMIT {l}) b{n}"
                    )
                })
                .collect();
            sql.push(&branches.join(" UNION ALL "));
            sql.push(&format!(" ORDER BY 2 DESC, 1 DESC LIMIT {l}"));
            for r in sql.fetch_all(conn).await? {
                hits.push(hit(&r)?);
            }
        }
        hits.sort_by(|a, b| b.time_us.cmp(&a.time_us).then(b.index.cmp(&a.index)));
        hits.truncate(limit.max(0) as usize);
        Ok(hits)
    }

    /// The actors on the staff of `units`, as `staff_actors` defines them.
    async fn staff_actor_list(conn: &mut Conn, units: &[i64]) -> Result<Vec<String>, sqlx::Error> {
        if units.is_empty() {
            return Ok(vec![]);
        }
        let mut sql = Sql::new("");
        let set = staff_actors(&mut sql, units);
        sql.push(&set);
        let mut out: Vec<String> = sql
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Whether record `idx` exists and is within the scope.
    pub async fn visible(conn: &mut Conn, idx: i64, within: &Within) -> Result<bool, sqlx::Error> {
        let mut sql = Sql::new("SELECT COUNT(*) FROM ledger_index li WHERE ");
        let p = sql.int(idx);
        sql.push(&format!("li.idx = {p}"));
        filter(&mut sql, &Filter::default(), within);
        let rows = sql.fetch_all(conn).await?;
        Ok(rows
            .first()
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .unwrap_or(0)
            > 0)
    }

    /// (records, flagged records) in the filter.
    pub async fn counts(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        e: Extra,
    ) -> Result<(i64, i64), sqlx::Error> {
        let mut sql = Sql::new("");
        let cond = extra(&mut sql, e);
        sql.push(&format!(
            "SELECT COUNT(*), COUNT(CASE WHEN {cond} THEN 1 END) FROM ledger_index li WHERE 1 = 1"
        ));
        filter(&mut sql, f, within);
        let rows = sql.fetch_all(conn).await?;
        match rows.first() {
            Some(r) => Ok((r.try_get(0)?, r.try_get(1)?)),
            None => Ok((0, 0)),
        }
    }

    /// (bucket number, count) of flagged records, buckets with none left
    /// out; bucket = (time + 9 h) / width.
    ///
    /// With both ends of the range given (as every analysis gives them),
    /// the buckets are a generated list and each is counted by its own
    /// subquery on its slice of the range: every count is a range of a
    /// `(…, time_us)` index, and neither engine sorts or hashes the rows.
    /// A `GROUP BY` over the bucket expression made SQLite sort every row
    /// of the range (about 1.2 s for the 3.3 million records of a month in
    /// the 10-million-record benchmark; this way about 0.3 s).
    pub async fn buckets(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        e: Extra,
        width_us: i64,
    ) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        if let (Some(from), Some(to)) = (f.from_us, f.to_us) {
            // Bucket numbers truncate like the SQL below only from 0 on.
            if from < to && from + JST_US >= 0 && width_us > 0 {
                return bucket_counts(conn, f, within, e, width_us, from, to).await;
            }
        }
        let mut sql = Sql::new(&format!(
            "SELECT (li.time_us + {JST_US}) / {width_us}, COUNT(*) FROM ledger_index li WHERE "
        ));
        let cond = extra(&mut sql, e);
        sql.push(&cond);
        filter(&mut sql, f, within);
        sql.push(" GROUP BY 1 ORDER BY 1");
        sql.fetch_all(conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// [`buckets`] over `from..to`, one counting subquery per bucket.
    async fn bucket_counts(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        e: Extra,
        width_us: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let mut sql = Sql::new("");
        let first = sql.int((from + JST_US) / width_us);
        let last = sql.int((to - 1 + JST_US) / width_us);
        let lo = sql.int(from);
        let hi = sql.int(to);
        let cond = extra(&mut sql, e);
        let rest = Filter {
            from_us: None,
            to_us: None,
            ..f.clone()
        };
        let filters = conditions(&mut sql, &rest, within);
        let start = format!("b.n * {width_us} - {JST_US}");
        let end = format!("(b.n + 1) * {width_us} - {JST_US}");
        sql.push(&format!(
            "WITH RECURSIVE b(n) AS (SELECT CAST({first} AS BIGINT) UNION ALL SELECT n + 1 FROM b WHERE n < {last})
             SELECT b.n, (SELECT COUNT(*) FROM ledger_index li
               WHERE li.time_us >= CASE WHEN {start} < {lo} THEN {lo} ELSE {start} END
                 AND li.time_us < CASE WHEN {end} > {hi} THEN {hi} ELSE {end} END
                 AND {cond}{filters}) AS c
             FROM b ORDER BY b.n"
        ));
        let rows = sql.fetch_all(conn).await?;
        let mut out = Vec::new();
        for r in &rows {
            let (n, c): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            if c > 0 {
                out.push((n, c));
            }
        }
        Ok(out)
    }

    type Counted = (String, i64, i64, i64);

    fn counted(r: &AnyRow) -> Result<Counted, sqlx::Error> {
        Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?))
    }

    /// (actor, count, first, last) of flagged records, most first.
    pub async fn by_actor(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        e: Extra,
        limit: i64,
    ) -> Result<Vec<Counted>, sqlx::Error> {
        let mut sql = Sql::new(
            "SELECT li.actor, COUNT(*), MIN(li.time_us), MAX(li.time_us) FROM ledger_index li WHERE ",
        );
        let cond = extra(&mut sql, e);
        sql.push(&cond);
        filter(&mut sql, f, within);
        let l = sql.int(limit);
        sql.push(&format!(
            " GROUP BY li.actor ORDER BY COUNT(*) DESC, li.actor LIMIT {l}"
        ));
        sql.fetch_all(conn).await?.iter().map(counted).collect()
    }

    /// (action, actor, count, first, last) of admin actions, most first.
    pub async fn by_action_actor(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        limit: i64,
    ) -> Result<Vec<(String, String, i64, i64, i64)>, sqlx::Error> {
        let mut sql = Sql::new(
            "SELECT li.action, li.actor, COUNT(*), MIN(li.time_us), MAX(li.time_us) FROM ledger_index li WHERE ",
        );
        let cond = extra(&mut sql, Extra::AdminActions);
        sql.push(&cond);
        filter(&mut sql, f, within);
        let l = sql.int(limit);
        sql.push(&format!(
            " GROUP BY li.action, li.actor ORDER BY COUNT(*) DESC, li.action, li.actor LIMIT {l}"
        ));
        sql.fetch_all(conn)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect()
    }

    /// Indexes of the newest failed logins (for their source addresses).
    pub async fn failed_indexes(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        limit: i64,
    ) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let mut sql = Sql::new("SELECT li.idx, li.time_us FROM ledger_index li WHERE ");
        let cond = extra(&mut sql, Extra::FailedLogins);
        sql.push(&cond);
        filter(&mut sql, f, within);
        let l = sql.int(limit);
        sql.push(&format!(" ORDER BY li.time_us DESC, li.idx DESC LIMIT {l}"));
        sql.fetch_all(conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Pushes `(each record with the time of the record BULK_RECORDS before
    /// it by the same actor) b WHERE that one is less than the window older`.
    fn bulk_flagged(sql: &mut Sql, f: &Filter, within: &Within) {
        sql.push(&format!(
            "(SELECT li.actor AS actor, li.time_us AS time_us,
                    LAG(li.time_us, {BULK_RECORDS}) OVER (PARTITION BY li.actor ORDER BY li.time_us, li.idx) AS prev
             FROM ledger_index li WHERE 1 = 1"
        ));
        filter(sql, f, within);
        sql.push(&format!(
            ") b WHERE b.prev IS NOT NULL AND b.time_us - b.prev < {}",
            BULK_WINDOW_SECS * US
        ));
    }

    pub async fn bulk_count(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
    ) -> Result<i64, sqlx::Error> {
        let mut sql = Sql::new("SELECT COUNT(*) FROM ");
        bulk_flagged(&mut sql, f, within);
        let rows = sql.fetch_all(conn).await?;
        rows.first()
            .map(|r| r.try_get(0))
            .transpose()
            .map(|n| n.unwrap_or(0))
    }

    /// (actor, flagged records, first, last) of bulk access, most first.
    pub async fn bulk(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        limit: i64,
    ) -> Result<Vec<Counted>, sqlx::Error> {
        let mut sql = Sql::new("SELECT b.actor, COUNT(*), MIN(b.time_us), MAX(b.time_us) FROM ");
        bulk_flagged(&mut sql, f, within);
        let l = sql.int(limit);
        sql.push(&format!(
            " GROUP BY b.actor ORDER BY COUNT(*) DESC, b.actor LIMIT {l}"
        ));
        sql.fetch_all(conn).await?.iter().map(counted).collect()
    }

    /// (actor, asset, count, first, last) where a person acted on a person,
    /// an account or an org unit.
    pub async fn person_asset_pairs(
        conn: &mut Conn,
        f: &Filter,
        within: &Within,
        limit: i64,
    ) -> Result<Vec<(String, String, i64, i64, i64)>, sqlx::Error> {
        let mut sql = Sql::new(
            "SELECT li.actor, li.asset, COUNT(*), MIN(li.time_us), MAX(li.time_us) FROM ledger_index li
             WHERE substr(li.actor, 1, 7) = 'person:'
               AND (substr(li.asset, 1, 7) = 'person:' OR substr(li.asset, 1, 8) = 'account:'
                    OR substr(li.asset, 1, 9) = 'org_unit:')",
        );
        filter(&mut sql, f, within);
        let l = sql.int(limit);
        sql.push(&format!(" GROUP BY li.actor, li.asset LIMIT {l}"));
        sql.fetch_all(conn)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect()
    }

    /// Every org unit: id → (parent, name).
    pub async fn units(
        conn: &mut Conn,
    ) -> Result<HashMap<i64, (Option<i64>, String)>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, parent_id, name FROM org_units")
            .fetch_all(conn)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
            .collect()
    }

    /// Every person's current unit.
    pub async fn person_units(conn: &mut Conn) -> Result<HashMap<i64, Option<i64>>, sqlx::Error> {
        let rows = sqlx::query("SELECT id, org_unit_id FROM persons")
            .fetch_all(conn)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Every account's unit: its holder's, or the shared account's.
    pub async fn account_units(conn: &mut Conn) -> Result<HashMap<i64, Option<i64>>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT a.id, COALESCE(p.org_unit_id, a.shared_org_unit_id)
             FROM accounts a LEFT JOIN persons p ON p.id = a.person_id",
        )
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn person_names(
        conn: &mut Conn,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let mut out = Vec::new();
        for chunk in ids.chunks(200) {
            let mut sql = Sql::new("SELECT id, name_kanji FROM persons WHERE id IN (");
            let list = sql.ints(chunk);
            sql.push(&list);
            sql.push(")");
            for r in sql.fetch_all(conn).await? {
                out.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    pub async fn account_names(
        conn: &mut Conn,
        ids: &[i64],
    ) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let mut out = Vec::new();
        for chunk in ids.chunks(200) {
            let mut sql = Sql::new(
                "SELECT a.id, COALESCE(p.name_kanji, a.login) FROM accounts a
                 LEFT JOIN persons p ON p.id = a.person_id WHERE a.id IN (",
            );
            let list = sql.ints(chunk);
            sql.push(&list);
            sql.push(")");
            for r in sql.fetch_all(conn).await? {
                out.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    /// (unit, unit name, active designated viewers today) per unit.
    pub async fn viewer_counts(
        conn: &mut Conn,
        units: Option<&[i64]>,
        today: &str,
    ) -> Result<Vec<(i64, String, i64)>, sqlx::Error> {
        let mut sql = Sql::new(
            "SELECT u.id, u.name, COUNT(DISTINCT ra.person_id) FROM role_assignments ra
             JOIN persons p ON p.id = ra.person_id JOIN org_units u ON u.id = ra.org_unit_id
             WHERE ra.role = ",
        );
        let role = sql.text(mamori_policy::Role::DesignatedViewer.code());
        let d = sql.text(today);
        sql.push(&format!(
            "{role} AND ra.valid_from <= {d} AND (ra.valid_to IS NULL OR ra.valid_to >= {d}) AND p.status = 'active'"
        ));
        if let Some(units) = units {
            if units.is_empty() {
                return Ok(vec![]);
            }
            let list = sql.ints(units);
            sql.push(&format!(" AND u.id IN ({list})"));
        }
        sql.push(" GROUP BY u.id, u.name ORDER BY u.id");
        sql.fetch_all(conn)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// The end of the viewer's last report (Unix seconds).
    pub async fn last_report_end(conn: &mut Conn, viewer: i64) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query("SELECT MAX(period_to) FROM viewing_reports WHERE viewer_person_id = $1")
            .bind(viewer)
            .fetch_one(conn)
            .await?
            .try_get(0)
    }

    /// (first time, count) of the viewer's searches and views after `after_us`.
    pub async fn viewing_actions_since(
        conn: &mut Conn,
        actor: &str,
        actions: &[&str; 2],
        after_us: i64,
    ) -> Result<(Option<i64>, i64), sqlx::Error> {
        let r = sqlx::query(
            "SELECT MIN(time_us), COUNT(*) FROM records
             WHERE actor = $1 AND action IN ($2, $3) AND time_us > $4",
        )
        .bind(actor)
        .bind(actions[0])
        .bind(actions[1])
        .bind(after_us)
        .fetch_one(conn)
        .await?;
        Ok((r.try_get(0)?, r.try_get(1)?))
    }

    /// The viewer's searches and views in [from, to).
    pub async fn count_viewing_actions(
        conn: &mut Conn,
        actor: &str,
        actions: &[&str; 2],
        from_us: i64,
        to_us: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "SELECT COUNT(*) FROM records
             WHERE actor = $1 AND action IN ($2, $3) AND time_us >= $4 AND time_us < $5",
        )
        .bind(actor)
        .bind(actions[0])
        .bind(actions[1])
        .bind(from_us)
        .bind(to_us)
        .fetch_one(conn)
        .await?
        .try_get(0)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_report(
        conn: &mut Conn,
        viewer: i64,
        unit: i64,
        from: i64,
        to: i64,
        searches: i64,
        summary: &str,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO viewing_reports (viewer_person_id, org_unit_id, period_from, period_to, searches, summary, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(viewer)
        .bind(unit)
        .bind(from)
        .bind(to)
        .bind(searches)
        .bind(summary)
        .bind(now)
        .fetch_one(conn)
        .await?
        .try_get(0)
    }

    const REPORT_SELECT: &str =
        "SELECT r.id, r.viewer_person_id, p.name_kanji, r.org_unit_id, u.name, r.period_from, r.period_to,
                r.searches, r.summary, r.created_at
         FROM viewing_reports r JOIN persons p ON p.id = r.viewer_person_id JOIN org_units u ON u.id = r.org_unit_id";

    fn report(r: &AnyRow) -> Result<ViewingReport, sqlx::Error> {
        let from: i64 = r.try_get(5)?;
        let to: i64 = r.try_get(6)?;
        Ok(ViewingReport {
            id: r.try_get(0)?,
            viewer_person_id: r.try_get(1)?,
            viewer_name: r.try_get(2)?,
            org_unit_id: r.try_get(3)?,
            org_unit_name: r.try_get(4)?,
            period_from: from,
            period_to: to,
            period_from_time: super::rfc3339_jst(from.saturating_mul(US)),
            period_to_time: super::rfc3339_jst(to.saturating_mul(US)),
            searches: r.try_get(7)?,
            summary: r.try_get(8)?,
            created_at: r.try_get(9)?,
        })
    }

    pub async fn get_report(
        conn: &mut Conn,
        id: i64,
    ) -> Result<Option<ViewingReport>, sqlx::Error> {
        let r = sqlx::query(&format!("{REPORT_SELECT} WHERE r.id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?;
        r.as_ref().map(report).transpose()
    }

    /// Reports for `units` (all when `None`), newest first.
    pub async fn list_reports(
        conn: &mut Conn,
        units: Option<&[i64]>,
        limit: i64,
    ) -> Result<Vec<ViewingReport>, sqlx::Error> {
        let mut sql = Sql::new(REPORT_SELECT);
        if let Some(units) = units {
            if units.is_empty() {
                return Ok(vec![]);
            }
            let list = sql.ints(units);
            sql.push(&format!(" WHERE r.org_unit_id IN ({list})"));
        }
        let l = sql.int(limit);
        sql.push(&format!(" ORDER BY r.created_at DESC, r.id DESC LIMIT {l}"));
        sql.fetch_all(conn).await?.iter().map(report).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_in_every_form() {
        let t = |s: &str, end| parse_instant(s, end);
        let nine_thirty = t("2026-11-29T09:30:00+09:00", false).unwrap();
        assert_eq!(t("2026-11-29T00:30:00Z", false), Some(nine_thirty));
        assert_eq!(t("2026-11-29T09:30", false), Some(nine_thirty));
        assert_eq!(t("2026-11-29 09:30:00", false), Some(nine_thirty));
        let midnight = t("2026-11-29", false).unwrap();
        assert_eq!(t("令和8年11月29日", false), Some(midnight));
        assert_eq!(t("R8.11.29", true), Some(midnight + DAY_US));
        assert_eq!(nine_thirty - midnight, (9 * 60 + 30) * 60 * US);
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "R99999999999.1.1",
            "\u{0}",
            "9999-12-01",
            "1900-01-01",
        ] {
            assert_eq!(t(bad, false), None, "{bad:?}");
        }
    }

    #[test]
    fn filters_name_the_field_at_fault() {
        let mut errors = Vec::new();
        let f = FilterInput {
            actor: Some(" person:\u{0}1 ".into()),
            result: Some("maybe".into()),
            from: Some("2026-11-30".into()),
            to: Some("2026-11-29".into()),
            asset: Some("x".repeat(600)),
            ..Default::default()
        }
        .check(&mut errors);
        assert_eq!(f.actor.as_deref(), Some("person:1"));
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["result", "asset", "to"]);
    }

    #[test]
    fn day_buckets_start_at_jst_midnight() {
        let at = parse_instant("2026-11-29T23:59:59+09:00", false).unwrap();
        let start = parse_instant("2026-11-29", false).unwrap();
        assert_eq!(day_start(at), start);
        let b = dense(&[], start, start + DAY_US, HOUR_US);
        assert_eq!(b.len(), 24);
        assert_eq!(b[0].start, "2026-11-29T00:00:00+09:00");
    }
}
