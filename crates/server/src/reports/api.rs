//! The report in the API: as JSON and as PDF (K32.3–4).

use super::ComplianceReport;
use crate::app::{AppState, Routes};
use crate::auth::perm::ViewComplianceReport;
use crate::auth::Require;
use crate::web::error::{ApiError, AppError};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub fn routes(r: Routes) -> Routes {
    r.get("/api/v1/reports/compliance", json)
        .get("/api/v1/reports/compliance.pdf", pdf)
}

/// The compiled inspection and audit report: clause by clause, compliance
/// over time, open findings, audits, self-inspection.
#[utoipa::path(get, path = "/api/v1/reports/compliance", tag = "reports",
    responses((status = 200, body = ComplianceReport), (status = 403, body = crate::web::error::Problem)))]
pub async fn json(
    State(state): State<AppState>,
    _req: Require<ViewComplianceReport>,
) -> Result<Json<ComplianceReport>, ApiError> {
    Ok(Json(super::build(&state).await?))
}

/// The same report as PDF (Japanese text, 和暦 dates, vector chart).
#[utoipa::path(get, path = "/api/v1/reports/compliance.pdf", tag = "reports",
    responses((status = 200, content_type = "application/pdf", description = "the report as PDF"),
        (status = 403, body = crate::web::error::Problem),
        (status = 503, description = "the report font is missing (setting `report.font_path`)", body = crate::web::error::Problem)))]
pub async fn pdf(
    State(state): State<AppState>,
    _req: Require<ViewComplianceReport>,
) -> Result<Response, ApiError> {
    Ok(pdf_response(&state).await?)
}

/// Builds and renders the PDF off the async workers.
pub(crate) async fn pdf_bytes(state: &AppState) -> Result<(Vec<u8>, String), AppError> {
    let report = super::build(state).await?;
    let font = state.config().report.font_path.clone();
    let name = format!("compliance-report-{}.pdf", report.as_of);
    let bytes = tokio::task::spawn_blocking(move || super::pdf::render(&report, &font))
        .await
        .map_err(|e| AppError::Internal(format!("pdf task: {e}")))?
        .map_err(|e| match e {
            super::pdf::PdfError::Font { .. } => {
                tracing::error!(error = %e, "report font");
                AppError::Unavailable("report.font_missing")
            }
            other => AppError::Internal(other.to_string()),
        })?;
    Ok((bytes, name))
}

pub(crate) async fn pdf_response(state: &AppState) -> Result<Response, AppError> {
    let (bytes, name) = pdf_bytes(state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
