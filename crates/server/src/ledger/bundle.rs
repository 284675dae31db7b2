//! Evidence freezing (SPEC §3.5, K27.1.3 evidence preservation, K25.3):
//! records chosen by a query are pinned with their inclusion proofs against
//! one signed checkpoint and exported as one self-contained file that
//! anyone can check offline (`mamori ledger verify-bundle FILE`).
//!
//! The file format, and how any RFC 9162 verifier checks it, are documented
//! with the pure code in `mamori_ledger::bundle` (re-exported here): the
//! format and its verification need nothing of the server, so they live in
//! the ledger crate, which an outside auditor can use on its own, and the
//! CLI checks a file without opening a database.
//!
//! # Query
//!
//! `actor`, `asset`, `system` (exact), `action_prefix` (the action starts
//! with it), `result` (`success` | `failure` | `denied`), `from` and `to`
//! (inclusive; a date — `2026-04-01`, 和暦 such as `R8.4.1` — is a whole day
//! in Japan Standard Time, or an RFC 3339 time): every criterion given must
//! hold. `indexes` adds records by index whatever the criteria. At least
//! one criterion or index is required; the selection is at most
//! [`MAX_RECORDS`] records, all below the checkpoint's size.
//!
//! # Freezing
//!
//! [`freeze`] takes the current checkpoint (`Ledger::checkpoint`, signing
//! one if the log grew), selects below its size, reads each record's exact
//! leaf bytes and its inclusion proof at that size, checks every proof
//! itself before handing anything out, then in one transaction keeps the
//! file in `evidence_bundles` (never updated or deleted: triggers) and
//! appends the `ledger.freeze` record (K27.1.3; detail: reason, count,
//! checkpoint size, records digest — never record content). Downloading a
//! bundle is a record too (`ledger.evidence_download`), so its custody is
//! on file.
//!
//! # HTTP
//!
//! - `POST /api/v1/ledger/evidence` `{"reason", "query": {…}}` → 201
//!   `{"id", "url", "record_count", "checkpoint_size", "records_digest"}`
//! - `GET /api/v1/ledger/evidence` → the bundles kept, newest first
//! - `GET /api/v1/ledger/evidence/{id}` → the file (`Content-Disposition:
//!   attachment`)
//! - `GET`/`POST /ledger/evidence` → the page: list and freeze form
//!
//! All need `FreezeEvidence` (セキュリティ総括管理者, セキュリティ統括者).

use super::{Ledger, LedgerError};
use crate::app::{AppState, Routes};
use crate::auth::perm::FreezeEvidence;
use crate::auth::{Actor, Require};
use crate::org::pages::{form_errors, NoticeQuery};
use crate::web::csrf::CsrfForm;
use crate::web::error::{ApiError, AppError, FieldError, PageError};
use crate::web::json::{check_text, ApiJson};
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use mamori_ledger::{tree, verify_inclusion, Checkpoint, Hash};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use time::OffsetDateTime;
use utoipa::ToSchema;

pub use mamori_ledger::bundle::{
    records_digest, verify_bundle, Bundle, BundleError, BundleRecord, KeySource, Summary, FORMAT,
};

/// Most records in one bundle.
pub const MAX_RECORDS: usize = 10_000;
/// Longest reason, in characters.
const MAX_REASON: usize = 2000;
/// Longest text criterion, in characters.
const MAX_CRITERION: usize = 200;

pub fn routes(r: Routes) -> Routes {
    r.post("/api/v1/ledger/evidence", api_freeze)
        .get("/api/v1/ledger/evidence", api_list)
        .get("/api/v1/ledger/evidence/{id}", api_download)
        .get("/ledger/evidence", page)
        .post("/ledger/evidence", page_freeze)
}

/// Which records to freeze (see the module docs).
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// Exactly this actor, e.g. `staff:100101`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Exactly this asset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Exactly this sending system, e.g. `library` (Mamori's own: `mamori`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The action starts with this, e.g. `auth.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_prefix: Option<String>,
    /// `success`, `failure` or `denied`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// From (inclusive): a date (a whole JST day) or an RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// To (inclusive): a date (a whole JST day) or an RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Records added by index, whatever the criteria.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<u64>,
}

/// `POST /api/v1/ledger/evidence`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// Why (required), e.g. the incident it serves.
    pub reason: String,
    pub query: EvidenceQuery,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FreezeAnswer {
    pub id: i64,
    /// Where to download the bundle.
    pub url: String,
    pub record_count: usize,
    pub checkpoint_size: u64,
    /// Hex SHA-256 naming the frozen set (see `mamori_ledger::bundle::records_digest`).
    pub records_digest: String,
}

/// A kept bundle, without its body.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceSummary {
    pub id: i64,
    /// Who froze it, as records name people (`person:12`).
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    pub reason: String,
    pub record_count: i64,
    pub checkpoint_size: i64,
    pub url: String,
}

/// A validated query.
#[derive(Debug, Default)]
struct Selection {
    actor: String,
    asset: String,
    system: String,
    action_prefix: String,
    result: String,
    /// Microseconds, inclusive.
    from_us: i64,
    /// Microseconds, exclusive.
    to_us: i64,
    indexes: BTreeSet<u64>,
    /// Any criterion besides the indexes.
    filtered: bool,
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// A `from`/`to` bound in microseconds: the start of the day or the time
/// itself for `from`, the end (exclusive) for `to`.
fn time_bound(errors: &mut Vec<FieldError>, field: &str, value: &str, end: bool) -> Option<i64> {
    let value = value.trim();
    if let Ok(t) = OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339) {
        return Some(micros(t) + i64::from(end));
    }
    match mamori_policy::wareki::parse_date(value) {
        Some(d) => {
            let d = if end { d.next_day()? } else { d };
            Some(micros(d.midnight().assume_offset(crate::clock::JST)))
        }
        None => {
            errors.push(FieldError::new(
                field,
                "evidence.bad_time",
                &[("value", value.chars().take(40).collect())],
            ));
            None
        }
    }
}

impl Selection {
    fn parse(q: &EvidenceQuery, reason: &str) -> Result<Selection, AppError> {
        let mut errors = Vec::new();
        check_text(&mut errors, "reason", reason, MAX_REASON, true);
        let mut text = |field: &str, v: &Option<String>| -> String {
            let v = v.as_deref().unwrap_or("").trim();
            check_text(&mut errors, field, v, MAX_CRITERION, false);
            v.to_string()
        };
        let mut s = Selection {
            actor: text("query.actor", &q.actor),
            asset: text("query.asset", &q.asset),
            system: text("query.system", &q.system),
            action_prefix: text("query.action_prefix", &q.action_prefix),
            result: text("query.result", &q.result),
            from_us: i64::MIN,
            to_us: i64::MAX,
            indexes: q.indexes.iter().copied().collect(),
            filtered: false,
        };
        if !s.result.is_empty() && mamori_ledger::AccessResult::parse(&s.result).is_none() {
            errors.push(FieldError::new("query.result", "evidence.bad_result", &[]));
        }
        fn given(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        if let Some(v) = given(&q.from) {
            s.from_us = time_bound(&mut errors, "query.from", v, false).unwrap_or(i64::MIN);
        }
        if let Some(v) = given(&q.to) {
            s.to_us = time_bound(&mut errors, "query.to", v, true).unwrap_or(i64::MAX);
        }
        if s.from_us != i64::MIN && s.to_us != i64::MAX && s.to_us <= s.from_us {
            errors.push(FieldError::new("query.to", "evidence.to_before_from", &[]));
        }
        if q.indexes.len() > MAX_RECORDS {
            errors.push(FieldError::new(
                "query.indexes",
                "evidence.too_many",
                &[("max", MAX_RECORDS.to_string())],
            ));
        }
        s.filtered = [&s.actor, &s.asset, &s.system, &s.action_prefix, &s.result]
            .iter()
            .any(|v| !v.is_empty())
            || given(&q.from).is_some()
            || given(&q.to).is_some();
        if errors.is_empty() && !s.filtered && s.indexes.is_empty() {
            errors.push(FieldError::new("query", "evidence.query_empty", &[]));
        }
        crate::web::json::done(errors)?;
        Ok(s)
    }
}

/// A bundle made and kept.
#[derive(Debug)]
pub struct Frozen {
    pub id: i64,
    pub bundle: Bundle,
    pub records_digest: Hash,
    pub checkpoint_size: u64,
}

fn checkpoint_of(note: &str) -> Result<Checkpoint, AppError> {
    note.rfind("\n\n")
        .and_then(|end| Checkpoint::parse(&note[..end + 1]).ok())
        .ok_or_else(|| AppError::Internal("the ledger's checkpoint does not parse".into()))
}

/// The exact leaf bytes of each record (sorted indexes), read in spans.
async fn leaves(ledger: &Ledger, indexes: &[u64]) -> Result<Vec<Vec<u8>>, AppError> {
    /// Reading a gap this long costs less than another query.
    const SPAN: u64 = 256;
    let mut out = Vec::with_capacity(indexes.len());
    let mut k = 0;
    while k < indexes.len() {
        let start = indexes[k];
        let mut end = k;
        while end + 1 < indexes.len() && indexes[end + 1] - start < SPAN {
            end += 1;
        }
        let span = ledger.read_entries(start, indexes[end] - start + 1).await?;
        for &i in &indexes[k..=end] {
            match span.get((i - start) as usize).cloned().flatten() {
                Some(bytes) => out.push(bytes),
                None => {
                    return Err(AppError::invalid(
                        "query",
                        "evidence.pruned",
                        &[("index", i.to_string())],
                    ))
                }
            }
        }
        k = end + 1;
    }
    Ok(out)
}

/// Inclusion proofs at `size`, reading the stored hashes of many proofs at
/// once (proofs of nearby records share most of their hashes).
async fn proofs(
    ledger: &Ledger,
    indexes: &[u64],
    size: u64,
) -> Result<Vec<Vec<Hash>>, LedgerError> {
    let mut out = Vec::with_capacity(indexes.len());
    for chunk in indexes.chunks(512) {
        let per = chunk
            .iter()
            .map(|&i| tree::inclusion_proof_indexes(i, size))
            .collect::<Result<Vec<_>, _>>()?;
        let mut all: Vec<u64> = per.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        let hashes: HashMap<u64, Hash> = all
            .iter()
            .copied()
            .zip(ledger.read_hashes(all.clone()).await?)
            .collect();
        for (&i, needed) in chunk.iter().zip(&per) {
            let hs: Vec<Hash> = needed
                .iter()
                .filter_map(|x| hashes.get(x).copied())
                .collect();
            out.push(tree::inclusion_proof_from(i, size, &hs)?);
        }
    }
    Ok(out)
}

/// Freezes the records `query` selects, keeps the bundle and records the
/// freeze (K27.1.3). Bad input is a 422 naming the field.
pub async fn freeze(
    state: &AppState,
    actor: &Actor,
    query: &EvidenceQuery,
    reason: &str,
) -> Result<Frozen, AppError> {
    let sel = Selection::parse(query, reason)?;
    let reason = reason.trim();
    let ledger = state.ledger();
    let now = state
        .clock()
        .now()
        .replace_nanosecond(0)
        .unwrap_or(state.clock().now());
    let note = ledger.checkpoint(now.unix_timestamp()).await?;
    let cp = checkpoint_of(&note)?;
    let size = cp.size;
    if let Some(i) = sel.indexes.iter().find(|&&i| i >= size) {
        return Err(AppError::invalid(
            "query.indexes",
            "evidence.index_beyond",
            &[("index", i.to_string()), ("size", size.to_string())],
        ));
    }
    let mut chosen = sel.indexes.clone();
    if sel.filtered {
        let mut conn = state.db().pool().acquire().await?;
        chosen.extend(store::select(&mut conn, &sel, size, MAX_RECORDS as i64 + 1).await?);
    }
    if chosen.is_empty() {
        return Err(AppError::invalid("query", "evidence.no_match", &[]));
    }
    if chosen.len() > MAX_RECORDS {
        return Err(AppError::invalid(
            "query",
            "evidence.too_many",
            &[("max", MAX_RECORDS.to_string())],
        ));
    }
    let indexes: Vec<u64> = chosen.into_iter().collect();
    let leaves = leaves(ledger, &indexes).await?;
    let proofs = proofs(ledger, &indexes, size).await?;
    let mut records = Vec::with_capacity(indexes.len());
    let mut hashes = Vec::with_capacity(indexes.len());
    for ((&i, leaf), proof) in indexes.iter().zip(&leaves).zip(&proofs) {
        let h = Hash::leaf(leaf);
        // Never hand out evidence that does not verify: a mismatch here means
        // the stored log is damaged, which is an alarm, not bad input.
        if !verify_inclusion(&h, i, size, proof, &cp.root) {
            return Err(AppError::Internal(format!(
                "record {i} does not verify against the checkpoint of size {size}"
            )));
        }
        hashes.push((i, h));
        records.push(BundleRecord::new(i, leaf, proof));
    }
    let digest = records_digest(hashes);
    let frozen_at = now
        .to_offset(crate::clock::JST)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let who = actor.who().record_ref();
    let bundle = Bundle {
        format: FORMAT.into(),
        origin: cp.origin.clone(),
        verifier_key: ledger.verifier_key(),
        checkpoint: note,
        frozen_by: who.clone(),
        frozen_by_login: actor.login.clone(),
        frozen_at,
        reason: reason.to_string(),
        query: serde_json::to_value(query).unwrap_or_default(),
        records,
    };
    let count = bundle.records.len();
    let mut tx = state.db().begin().await?;
    let id = store::insert(
        &mut tx,
        &store::NewBundle {
            created_by: &who,
            created_at: now.unix_timestamp(),
            reason,
            record_count: count as i64,
            checkpoint_size: size as i64,
            body: &bundle.to_json(),
        },
    )
    .await?;
    let rec = crate::records::Record::new(
        actor.who(),
        "ledger.freeze",
        format!("evidence:{id}"),
        "K27.1.3",
    )
    .from_ip(actor.ip())
    .detail(json!({
        "reason": reason,
        "count": count,
        "checkpoint_size": size,
        "records_digest": digest.to_hex(),
    }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    ledger.poke();
    Ok(Frozen {
        id,
        bundle,
        records_digest: digest,
        checkpoint_size: size,
    })
}

/// The bundles kept, newest first.
pub async fn list(state: &AppState) -> Result<Vec<EvidenceSummary>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(store::list(&mut conn, 500)
        .await?
        .into_iter()
        .map(|r| EvidenceSummary {
            url: download_url(r.id),
            id: r.id,
            created_by: r.created_by,
            created_at: OffsetDateTime::from_unix_timestamp(r.created_at)
                .ok()
                .and_then(|t| {
                    t.to_offset(crate::clock::JST)
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            reason: r.reason,
            record_count: r.record_count,
            checkpoint_size: r.checkpoint_size,
        })
        .collect())
}

/// A kept bundle's file, recording who took it.
pub async fn download(state: &AppState, actor: &Actor, id: i64) -> Result<String, AppError> {
    let mut tx = state.db().begin().await?;
    let body = store::body(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("evidence bundle"))?;
    let rec = crate::records::Record::new(
        actor.who(),
        "ledger.evidence_download",
        format!("evidence:{id}"),
        "K27.1.3",
    )
    .from_ip(actor.ip());
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(body)
}

fn download_url(id: i64) -> String {
    format!("/api/v1/ledger/evidence/{id}")
}

// ---------------------------------------------------------------------------
// API

/// Freeze records as evidence (K27.1.3): the bundle is kept and can be
/// downloaded from `url`.
#[utoipa::path(post, path = "/api/v1/ledger/evidence", tag = "ledger", request_body = FreezeRequest,
    responses((status = 201, body = FreezeAnswer),
              (status = 422, description = "no reason, a bad criterion, nothing or too much selected", body = crate::web::error::Problem),
              (status = 403, body = crate::web::error::Problem)))]
pub async fn api_freeze(
    State(state): State<AppState>,
    req: Require<FreezeEvidence>,
    ApiJson(input): ApiJson<FreezeRequest>,
) -> Result<Response, ApiError> {
    let f = freeze(&state, &req.actor, &input.query, &input.reason).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, download_url(f.id))],
        Json(FreezeAnswer {
            url: download_url(f.id),
            id: f.id,
            record_count: f.bundle.records.len(),
            checkpoint_size: f.checkpoint_size,
            records_digest: f.records_digest.to_hex(),
        }),
    )
        .into_response())
}

/// The evidence bundles kept, newest first.
#[utoipa::path(get, path = "/api/v1/ledger/evidence", tag = "ledger",
    responses((status = 200, body = Vec<EvidenceSummary>), (status = 403, body = crate::web::error::Problem)))]
pub async fn api_list(
    State(state): State<AppState>,
    _req: Require<FreezeEvidence>,
) -> Result<Json<Vec<EvidenceSummary>>, ApiError> {
    Ok(Json(list(&state).await?))
}

/// One bundle file (format `mamori-evidence-bundle/1`), as an attachment.
/// Each download is a record.
#[utoipa::path(get, path = "/api/v1/ledger/evidence/{id}", tag = "ledger", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/json", body = String),
              (status = 404, body = crate::web::error::Problem)))]
pub async fn api_download(
    State(state): State<AppState>,
    req: Require<FreezeEvidence>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::NotFound("evidence bundle"))?;
    let body = download(&state, &req.actor, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"mamori-evidence-{id}.json\""),
            ),
        ],
        body,
    )
        .into_response())
}

// ---------------------------------------------------------------------------
// Page

/// The freeze form, as typed.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct FreezeForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    asset: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    action_prefix: String,
    #[serde(default)]
    result: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// `12, 15, 100-120`.
    #[serde(default)]
    indexes: String,
}

/// Indexes typed as numbers and `a-b` ranges, separated by commas or spaces.
fn parse_indexes(s: &str) -> Result<Vec<u64>, AppError> {
    let bad = || AppError::invalid("query.indexes", "evidence.bad_index", &[]);
    let mut out = Vec::new();
    for part in s.split(|c: char| c == ',' || c == '、' || c.is_whitespace()) {
        if part.is_empty() {
            continue;
        }
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a: u64 = a.parse().map_err(|_| bad())?;
        let b: u64 = b.parse().map_err(|_| bad())?;
        if b < a {
            return Err(bad());
        }
        if b - a >= MAX_RECORDS as u64 || out.len() + ((b - a) as usize) >= MAX_RECORDS {
            return Err(AppError::invalid(
                "query.indexes",
                "evidence.too_many",
                &[("max", MAX_RECORDS.to_string())],
            ));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

impl FreezeForm {
    fn query(&self) -> Result<EvidenceQuery, AppError> {
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(EvidenceQuery {
            actor: opt(&self.actor),
            asset: opt(&self.asset),
            system: opt(&self.system),
            action_prefix: opt(&self.action_prefix),
            result: opt(&self.result),
            from: opt(&self.from),
            to: opt(&self.to),
            indexes: parse_indexes(&self.indexes)?,
        })
    }
}

const FORM_FIELDS: &[&str] = &[
    "reason",
    "query.actor",
    "query.asset",
    "query.system",
    "query.action_prefix",
    "query.result",
    "query.from",
    "query.to",
    "query.indexes",
];

async fn render_page(
    state: &AppState,
    actor: &Actor,
    form: &FreezeForm,
    errors: &[FieldError],
    notice: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let bundles = list(state).await?;
    let html = render(
        "ledger_evidence.html",
        &Chrome::for_actor(actor),
        json!({
            "bundles": bundles.iter().map(|b| json!({
                "id": b.id, "url": b.url, "created_by": b.created_by, "created_at": b.created_at,
                "reason": b.reason, "record_count": b.record_count, "checkpoint_size": b.checkpoint_size,
            })).collect::<Vec<_>>(),
            "form": form,
            "errors": form_errors(errors, FORM_FIELDS, "f-"),
            "notice": notice,
            "max": MAX_RECORDS,
            "key": state.ledger().verifier_key(),
        }),
    )?;
    Ok((status, html).into_response())
}

async fn page(
    State(state): State<AppState>,
    req: Require<FreezeEvidence>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let notice = q.notice(&[("frozen", "evidence.notice_frozen")]);
    render_page(
        &state,
        &req.actor,
        &FreezeForm::default(),
        &[],
        notice,
        StatusCode::OK,
    )
    .await
}

async fn page_freeze(
    State(state): State<AppState>,
    req: Require<FreezeEvidence>,
    CsrfForm(form): CsrfForm<FreezeForm>,
) -> Result<Response, PageError> {
    let result = match form.query() {
        Ok(q) => freeze(&state, &req.actor, &q, &form.reason)
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/ledger/evidence?done=frozen").into_response()),
        Err(AppError::Invalid(errors)) => {
            render_page(
                &state,
                &req.actor,
                &form,
                &errors,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------
// SQL

/// The SQL of evidence freezing: the selection over the search index and
/// the `evidence_bundles` table.
mod store {
    use super::Selection;
    use crate::db::Conn;
    use sqlx::Row;

    fn i64_of(n: u64) -> i64 {
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    /// Indexes below `size` matching every criterion, in order, at most `limit`.
    pub async fn select(
        conn: &mut Conn,
        s: &Selection,
        size: u64,
        limit: i64,
    ) -> Result<Vec<u64>, sqlx::Error> {
        // `substr … = prefix` rather than LIKE: exact and case-sensitive on
        // both engines, with nothing in the prefix to escape.
        let rows = sqlx::query(
            "SELECT idx FROM ledger_index
             WHERE idx < $1 AND ($2 = '' OR actor = $2) AND ($3 = '' OR asset = $3)
               AND ($4 = '' OR system = $4)
               AND ($5 = '' OR substr(action, 1, length($5)) = $5)
               AND ($6 = '' OR result = $6) AND time_us >= $7 AND time_us < $8
             ORDER BY idx LIMIT $9",
        )
        .bind(i64_of(size))
        .bind(&s.actor)
        .bind(&s.asset)
        .bind(&s.system)
        .bind(&s.action_prefix)
        .bind(&s.result)
        .bind(s.from_us)
        .bind(s.to_us)
        .bind(limit)
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>(0)?.max(0) as u64))
            .collect()
    }

    pub struct NewBundle<'a> {
        pub created_by: &'a str,
        pub created_at: i64,
        pub reason: &'a str,
        pub record_count: i64,
        pub checkpoint_size: i64,
        pub body: &'a str,
    }

    pub async fn insert(conn: &mut Conn, b: &NewBundle<'_>) -> Result<i64, sqlx::Error> {
        sqlx::query(
            "INSERT INTO evidence_bundles (created_by, created_at, reason, record_count, checkpoint_size, body)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(b.created_by)
        .bind(b.created_at)
        .bind(b.reason)
        .bind(b.record_count)
        .bind(b.checkpoint_size)
        .bind(b.body)
        .fetch_one(conn)
        .await?
        .try_get(0)
    }

    pub struct Kept {
        pub id: i64,
        pub created_by: String,
        pub created_at: i64,
        pub reason: String,
        pub record_count: i64,
        pub checkpoint_size: i64,
    }

    pub async fn list(conn: &mut Conn, limit: i64) -> Result<Vec<Kept>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, created_by, created_at, reason, record_count, checkpoint_size
             FROM evidence_bundles ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(conn)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Kept {
                    id: r.try_get(0)?,
                    created_by: r.try_get(1)?,
                    created_at: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    record_count: r.try_get(4)?,
                    checkpoint_size: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub async fn body(conn: &mut Conn, id: i64) -> Result<Option<String>, sqlx::Error> {
        sqlx::query("SELECT body FROM evidence_bundles WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(q: EvidenceQuery, reason: &str) -> Result<Selection, Vec<String>> {
        Selection::parse(&q, reason).map_err(|e| match e {
            AppError::Invalid(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn k27_1_3_query_errors_name_the_field() {
        let q = |f: fn(&mut EvidenceQuery)| {
            let mut q = EvidenceQuery {
                actor: Some("staff:1".into()),
                ..Default::default()
            };
            f(&mut q);
            q
        };
        assert_eq!(sel(q(|_| {}), " ").unwrap_err(), vec!["reason"]);
        assert_eq!(
            sel(EvidenceQuery::default(), "x").unwrap_err(),
            vec!["query"]
        );
        assert_eq!(
            sel(q(|q| q.from = Some("2026-13-01".into())), "x").unwrap_err(),
            vec!["query.from"]
        );
        assert_eq!(
            sel(q(|q| q.to = Some("yesterday".into())), "x").unwrap_err(),
            vec!["query.to"]
        );
        assert_eq!(
            sel(
                q(|q| {
                    q.from = Some("2026-04-02".into());
                    q.to = Some("2026-04-01".into());
                }),
                "x"
            )
            .unwrap_err(),
            vec!["query.to"]
        );
        assert_eq!(
            sel(q(|q| q.result = Some("ok".into())), "x").unwrap_err(),
            vec!["query.result"]
        );
        assert_eq!(
            sel(q(|q| q.actor = Some("a\u{0}b".into())), "x").unwrap_err(),
            vec!["query.actor"]
        );
    }

    #[test]
    fn dates_are_whole_jst_days_and_times_are_inclusive() {
        let s = sel(
            EvidenceQuery {
                from: Some("R8.4.1".into()),
                to: Some("2026-04-01".into()),
                ..Default::default()
            },
            "x",
        )
        .unwrap();
        // 2026-04-01T00:00+09:00 is 2026-03-31T15:00Z.
        assert_eq!(s.from_us, 1_774_969_200_000_000);
        assert_eq!(s.to_us - s.from_us, 86_400_000_000);
        assert!(s.filtered);
        let s = sel(
            EvidenceQuery {
                to: Some("2026-04-01T00:00:00+09:00".into()),
                ..Default::default()
            },
            "x",
        )
        .unwrap();
        assert_eq!(s.to_us, 1_774_969_200_000_001);
        let s = sel(
            EvidenceQuery {
                indexes: vec![3, 1, 3],
                ..Default::default()
            },
            "x",
        )
        .unwrap();
        assert!(!s.filtered);
        assert_eq!(s.indexes.into_iter().collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn typed_indexes() {
        assert_eq!(
            parse_indexes("1, 3、5-7 9").unwrap(),
            vec![1, 3, 5, 6, 7, 9]
        );
        assert!(parse_indexes("").unwrap().is_empty());
        for bad in ["x", "1-", "5-3", "-1", "0-10000", "1.5"] {
            assert!(parse_indexes(bad).is_err(), "{bad}");
        }
    }
}
