//! The ledger's HTTP contract (SPEC §4), in the C2SP formats unchanged so
//! any tlog client can read it.

use super::{Ledger, LedgerError};
use crate::app::{AppState, Routes};
use crate::tokens::{LedgerAuditor, LedgerContentReader, LedgerWriter};
use crate::web::error::{ApiError, AppError, FieldError};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use mamori_ledger::{AccessRecord, AccessResult, Tile};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Most records in one batch.
pub const MAX_RECORDS: usize = 1000;
/// Largest batch body.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

pub fn routes(r: Routes) -> Routes {
    r.post("/api/v1/ledger/records", ingest)
        .get("/api/v1/ledger/checkpoint", checkpoint)
        .get("/api/v1/ledger/key", key)
        .get("/api/v1/ledger/keys", keys)
        .get("/api/v1/ledger/tile/{*path}", tile)
        .get("/api/v1/ledger/records/{index}", record)
        .get("/api/v1/ledger/proof/inclusion", inclusion)
        .get("/api/v1/ledger/proof/consistency", consistency)
}

impl From<LedgerError> for AppError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::BeyondTree { index, size } => AppError::Invalid(vec![FieldError::new(
                "index",
                "ledger.beyond_tree",
                &[("index", index.to_string()), ("size", size.to_string())],
            )]),
            LedgerError::Invalid(m) => AppError::Invalid(vec![FieldError::new(
                "query",
                "ledger.invalid",
                &[("detail", m)],
            )]),
            other => AppError::Internal(other.to_string()),
        }
    }
}

fn ledger(state: &AppState) -> &Ledger {
    state.ledger()
}

/// One record as a ward system sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncomingRecord {
    /// The sender's id for this record; resending it is not a duplicate.
    pub event_id: String,
    /// RFC 3339, e.g. `2026-11-29T09:30:00+09:00`.
    pub time: String,
    pub actor: String,
    pub action: String,
    pub asset: String,
    /// `success`, `failure` or `denied`.
    pub result: String,
    #[serde(default)]
    pub source_ip: Option<String>,
    /// Further detail as a JSON object (at most 8 KiB as canonical JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub event_id: String,
    pub index: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rejected {
    /// Position in the submitted array (from 0).
    pub position: usize,
    pub event_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAnswer {
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
}

/// Checks one record; the reason names the field.
fn to_access_record(
    system: &str,
    v: serde_json::Value,
) -> Result<AccessRecord, (Option<String>, String)> {
    let event_id = v.get("event_id").and_then(|e| e.as_str()).map(String::from);
    let fail = |reason: String| (event_id.clone(), reason);
    let rec: IncomingRecord = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        fail(format!(
            "{}: {}",
            if path == "." { "record".into() } else { path },
            e.into_inner()
        ))
    })?;
    let time =
        time::OffsetDateTime::parse(&rec.time, &time::format_description::well_known::Rfc3339)
            .map_err(|e| fail(format!("time: not RFC 3339 ({e})")))?;
    let result = AccessResult::parse(&rec.result)
        .ok_or_else(|| fail("result: must be success, failure or denied".into()))?;
    let detail = match rec.detail {
        None => None,
        Some(d @ serde_json::Value::Object(_)) => {
            // serde_json keeps object keys sorted, so this text is canonical.
            let text = d.to_string();
            if text.len() > mamori_ledger::record::MAX_DETAIL {
                return Err(fail(format!(
                    "detail: larger than {} bytes",
                    mamori_ledger::record::MAX_DETAIL
                )));
            }
            Some(text)
        }
        Some(_) => return Err(fail("detail: must be a JSON object".into())),
    };
    let r = AccessRecord {
        time_micros: (time.unix_timestamp_nanos() / 1000) as i64,
        system: system.into(),
        event_id: rec.event_id,
        actor: rec.actor,
        action: rec.action,
        asset: rec.asset,
        result,
        source_address: rec.source_ip.filter(|s| !s.is_empty()),
        detail,
        salt: mamori_ledger::record::new_salt(),
    };
    r.encode().map_err(|e| fail(e.to_string()))?;
    Ok(r)
}

/// Append a batch of access records (K16.2.1). Acknowledged means durable.
/// Each bad record is rejected with its position and reason; the good ones
/// are kept. A resent `event_id` answers its original index.
#[utoipa::path(post, path = "/api/v1/ledger/records", tag = "ledger", request_body = Vec<IncomingRecord>,
    security(("bearer" = ["ledger:write"])),
    responses((status = 200, description = "at least one record accepted, or none sent", body = IngestAnswer),
              (status = 422, description = "every record rejected, or the body is not a JSON array", body = IngestAnswer),
              (status = 413, description = "more than 1,000 records or 4 MiB", body = crate::web::error::Problem),
              (status = 401, body = crate::web::error::Problem)))]
pub async fn ingest(
    State(state): State<AppState>,
    LedgerWriter(caller): LedgerWriter,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(AppError::invalid("Content-Type", "json.content_type", &[]).into());
    }
    if body.len() > MAX_BODY {
        return Ok(too_large());
    }
    let items: Vec<serde_json::Value> = crate::web::json::parse_json(&body)?;
    if items.len() > MAX_RECORDS {
        return Ok(too_large());
    }
    let mut accepted_in = Vec::new();
    let mut rejected = Vec::new();
    for (position, item) in items.into_iter().enumerate() {
        match to_access_record(&caller.system_code, item) {
            Ok(r) => accepted_in.push(r),
            Err((event_id, reason)) => rejected.push(Rejected {
                position,
                event_id,
                reason,
            }),
        }
    }
    let ids: Vec<String> = accepted_in.iter().map(|r| r.event_id.clone()).collect();
    let appended = ledger(&state)
        .submit(accepted_in)
        .await
        .map_err(AppError::from)?;
    let accepted: Vec<Accepted> = ids
        .into_iter()
        .zip(appended)
        .map(|(event_id, a)| Accepted {
            event_id,
            index: a.index,
        })
        .collect();
    let status = if accepted.is_empty() && !rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Json(IngestAnswer { accepted, rejected })).into_response())
}

fn too_large() -> Response {
    let problem = crate::web::error::Problem {
        type_: "urn:mamori:problem:ledger.batch_too_large".into(),
        title: "Batch too large".into(),
        status: 413,
        detail: Some(crate::web::i18n::t(
            crate::web::i18n::current(),
            "ledger.batch_too_large",
            &[("max", MAX_RECORDS.to_string())],
        )),
        code: "ledger.batch_too_large".into(),
        field: Some("body".into()),
        errors: vec![],
    };
    crate::web::error::problem_response(StatusCode::PAYLOAD_TOO_LARGE, &problem)
}

/// 410 Gone: the record's content was pruned after its retention period
/// (K16.2.1); its leaf hash stays, so proofs for it still verify.
fn pruned(index: u64) -> Response {
    let problem = crate::web::error::Problem {
        type_: "urn:mamori:problem:ledger.pruned".into(),
        title: "Record pruned".into(),
        status: 410,
        detail: Some(crate::web::i18n::t(
            crate::web::i18n::current(),
            "ledger.pruned",
            &[("index", index.to_string())],
        )),
        code: "ledger.pruned".into(),
        field: Some("index".into()),
        errors: vec![],
    };
    crate::web::error::problem_response(StatusCode::GONE, &problem)
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The latest checkpoint, a c2sp.org/tlog-checkpoint signed note (Ed25519).
#[utoipa::path(get, path = "/api/v1/ledger/checkpoint", tag = "ledger", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    _a: LedgerAuditor,
) -> Result<Response, ApiError> {
    Ok(text(
        ledger(&state)
            .checkpoint(state.clock().unix())
            .await
            .map_err(AppError::from)?,
    ))
}

/// The signed-note verifier key `<name>+<hex key id>+<base64(0x01 ‖ pubkey)>`.
#[utoipa::path(get, path = "/api/v1/ledger/key", tag = "ledger", responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn key(State(state): State<AppState>, _a: LedgerAuditor) -> Response {
    text(format!("{}\n", ledger(&state).verifier_key()))
}

/// Every key that has signed checkpoints, oldest first (`mamori ledger
/// rotate-key` adds one): a checkpoint signed before a rotation verifies
/// with the key of its time, and each retired key carries its handover,
/// the log at rotation signed by it and its successor.
#[utoipa::path(get, path = "/api/v1/ledger/keys", tag = "ledger",
    responses((status = 200, body = Vec<super::store::KeyRow>), (status = 401, body = crate::web::error::Problem)))]
pub async fn keys(
    State(state): State<AppState>,
    _a: LedgerAuditor,
) -> Result<axum::Json<Vec<super::store::KeyRow>>, ApiError> {
    let mut conn = state.db().pool().acquire().await?;
    Ok(axum::Json(super::store::keys(&mut conn).await?))
}

/// c2sp.org/tlog-tiles: `tile/<L>/<N>[.p/<W>]` (hashes) and
/// `tile/entries/<N>[.p/<W>]` (entry bundles: exact leaf bytes, which need
/// `ledger:read`).
#[utoipa::path(get, path = "/api/v1/ledger/tile/{path}", tag = "ledger", params(("path" = String, Path, description = "the C2SP tile path after `tile/`")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = crate::web::error::Problem),
              (status = 410, description = "an entry bundle holding a pruned record (code `ledger.pruned`)", body = crate::web::error::Problem)))]
pub async fn tile(
    State(state): State<AppState>,
    _a: LedgerAuditor,
    parts: axum::http::request::Parts,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let t = Tile::parse_path(&format!("tile/{path}")).map_err(|e| {
        AppError::invalid("path", "ledger.bad_tile_path", &[("detail", e.to_string())])
    })?;
    if matches!(t.kind(), mamori_ledger::TileKind::Entries) {
        let mut parts = parts;
        LedgerContentReader::from_parts(&mut parts, &state).await?;
    }
    match ledger(&state).tile(&t).await {
        Ok(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CACHE_CONTROL,
                    if t.is_partial() {
                        "no-store"
                    } else {
                        "public, max-age=31536000, immutable"
                    },
                ),
            ],
            bytes,
        )
            .into_response()),
        Err(LedgerError::BeyondTree { .. }) => Err(AppError::NotFound("tile").into()),
        Err(LedgerError::Pruned { index }) => Ok(pruned(index)),
        Err(e) => Err(AppError::from(e).into()),
    }
}

impl LedgerContentReader {
    async fn from_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        use axum::extract::FromRequestParts;
        match <LedgerContentReader as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
        {
            Ok(r) => Ok(r),
            Err(_) => Err(AppError::Forbidden("ledger:read").into()),
        }
    }
}

/// One record decoded as JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub index: u64,
    /// RFC 3339.
    pub time: String,
    pub system: String,
    pub event_id: String,
    pub actor: String,
    pub action: String,
    pub asset: String,
    pub result: String,
    pub source_ip: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// The leaf hash, base64.
    pub leaf_hash: String,
}

#[utoipa::path(get, path = "/api/v1/ledger/records/{index}", tag = "ledger", params(("index" = u64, Path)),
    responses((status = 200, body = RecordView), (status = 404, body = crate::web::error::Problem),
              (status = 410, description = "the record's content was pruned after its retention period (code `ledger.pruned`)", body = crate::web::error::Problem)))]
pub async fn record(
    State(state): State<AppState>,
    _r: LedgerContentReader,
    Path(index): Path<String>,
) -> Result<Response, ApiError> {
    let index: u64 = index
        .parse()
        .map_err(|_| AppError::invalid("index", "ledger.bad_index", &[]))?;
    let size = ledger(&state).size().await.map_err(AppError::from)?;
    if index >= size {
        return Err(AppError::NotFound("record").into());
    }
    let Some(bytes) = ledger(&state)
        .read_entries(index, 1)
        .await
        .map_err(AppError::from)?
        .pop()
        .flatten()
    else {
        return Ok(pruned(index));
    };
    let r = AccessRecord::decode(&bytes)
        .map_err(|e| AppError::Internal(format!("record {index} does not decode: {e}")))?;
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.time_micros) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Ok(Json(RecordView {
        index,
        time,
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
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InclusionQuery {
    pub index: String,
    pub size: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Base64 hashes, RFC 9162 §2.1.3.
    pub hashes: Vec<String>,
}

fn number(field: &str, v: &str) -> Result<u64, AppError> {
    v.parse()
        .map_err(|_| AppError::invalid(field, "ledger.bad_number", &[]))
}

fn b64(h: &[mamori_ledger::Hash]) -> Vec<String> {
    h.iter()
        .map(|h| base64::engine::general_purpose::STANDARD.encode(h.0))
        .collect()
}

#[utoipa::path(get, path = "/api/v1/ledger/proof/inclusion", tag = "ledger", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 422, body = crate::web::error::Problem)))]
pub async fn inclusion(
    State(state): State<AppState>,
    _a: LedgerAuditor,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    let (index, size) = (number("index", &q.index)?, number("size", &q.size)?);
    let hashes = ledger(&state)
        .inclusion_proof(index, size)
        .await
        .map_err(AppError::from)?;
    Ok(Json(InclusionProof {
        index,
        size,
        hashes: b64(&hashes),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConsistencyQuery {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// Base64 hashes, RFC 9162 §2.1.4.
    pub hashes: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/ledger/proof/consistency", tag = "ledger", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 422, body = crate::web::error::Problem)))]
pub async fn consistency(
    State(state): State<AppState>,
    _a: LedgerAuditor,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let (from, to) = (number("from", &q.from)?, number("to", &q.to)?);
    if from > to {
        return Err(AppError::invalid("from", "ledger.from_after_to", &[]).into());
    }
    let hashes = ledger(&state)
        .consistency_proof(from, to)
        .await
        .map_err(AppError::from)?;
    Ok(Json(ConsistencyProof {
        from,
        to,
        hashes: b64(&hashes),
    }))
}
