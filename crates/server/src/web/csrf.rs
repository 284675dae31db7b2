//! CSRF protection for every HTML form: a per-session synchronizer token in
//! a hidden `csrf` field, compared in constant time. JSON API requests are
//! protected by `SameSite=Strict` cookies plus the `application/json`
//! content type, which a cross-site form cannot send.

use crate::app::AppState;
use crate::auth::{token, SessionCtx};
use crate::web::error::{AppError, PageError};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// A URL-encoded form whose `csrf` field matched the session's token.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = SessionCtx::from_request_parts(&mut parts, state).await?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).map_err(|_| {
            PageError(AppError::invalid("form", "error.form_encoding", &[])).into_response()
        })?;
        let sent = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if session.csrf.is_empty() || !token::same(sent, &session.csrf) {
            return Err(PageError(AppError::Csrf).into_response());
        }
        let value = serde_urlencoded::from_bytes(&bytes).map_err(|e| {
            PageError(AppError::invalid(
                "form",
                "error.form_fields",
                &[("detail", e.to_string())],
            ))
            .into_response()
        })?;
        Ok(CsrfForm(value))
    }
}
