//! JSON bodies for the API: the content type must be `application/json`
//! (so a cross-site form cannot post here), unknown fields are refused, and
//! every problem names the field (RFC 9457 problem+json).

use crate::app::AppState;
use crate::web::error::{ApiError, AppError, FieldError};
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// Largest JSON body accepted (the ledger's batches set their own limit).
pub const MAX_JSON: usize = 1024 * 1024;

pub struct ApiJson<T>(pub T);

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error has no meaningful field: the body as a whole is wrong.
        // A missing field is named by serde only in the message.
        let missing = inner
            .to_string()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
            .map(String::from);
        let field = if inner.is_syntax() || inner.is_eof() {
            "body".to_string()
        } else if let Some(m) = missing {
            if path == "." {
                m
            } else {
                format!("{path}.{m}")
            }
        } else if path == "." {
            "body".to_string()
        } else {
            path
        };
        let code = if inner.is_syntax() || inner.is_eof() {
            "json.syntax"
        } else {
            "json.invalid"
        };
        AppError::Invalid(vec![FieldError::new(
            field,
            code,
            &[("detail", inner.to_string())],
        )])
    })
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(
                ApiError(AppError::invalid("Content-Type", "json.content_type", &[]))
                    .into_response(),
            );
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            ApiError(AppError::invalid(
                "body",
                "json.too_large",
                &[("max", MAX_JSON.to_string())],
            ))
            .into_response()
        })?;
        parse_json(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError(e).into_response())
    }
}

/// Checks a string field's length in characters and that it is not blank.
pub fn check_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max: usize,
    required: bool,
) {
    let n = value.chars().count();
    if required && value.trim().is_empty() {
        errors.push(FieldError::new(field, "field.required", &[]));
    } else if n > max {
        errors.push(FieldError::new(
            field,
            "field.too_long",
            &[("max", max.to_string())],
        ));
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        errors.push(FieldError::new(field, "field.control_chars", &[]));
    }
}

/// Parses a date field (`YYYY-MM-DD` or any form 和暦 included).
pub fn check_date(errors: &mut Vec<FieldError>, field: &str, value: &str) -> Option<time::Date> {
    match mamori_policy::wareki::parse_date(value) {
        Some(d) => Some(d),
        None => {
            errors.push(FieldError::new(
                field,
                "field.bad_date",
                &[("value", value.chars().take(40).collect())],
            ));
            None
        }
    }
}

pub fn done(errors: Vec<FieldError>) -> Result<(), AppError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Invalid(errors))
    }
}
