//! One error type for the web layer, mapped in one place to RFC 9457
//! problem+json for the API and to a Japanese (or English) page for the UI.
//! Internal errors are logged with a reference and never shown.

use super::i18n::{self, Lang};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem with one input field.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field (JSON pointer-ish name, CSV `line:column`, or form field).
    pub field: String,
    /// Stable code of the rule, e.g. `password.contains_birth_date`.
    pub code: String,
    /// The clause the rule serves, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clause: Option<String>,
    /// Human-readable message in the request's language.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, params: &[(&str, String)]) -> FieldError {
        FieldError {
            field: field.into(),
            code: code.into(),
            clause: None,
            message: i18n::t(i18n::current(), code, params),
        }
    }

    pub fn with_clause(mut self, clause: &str) -> FieldError {
        self.clause = Some(clause.into());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not logged in")]
    Unauthenticated,
    #[error("password change required")]
    PasswordChangeRequired,
    /// The session idled and is locked (K12.1.5): unlock first.
    #[error("session locked")]
    SessionLocked,
    /// The login still needs its card (the second factor).
    #[error("card step required")]
    CardStepRequired,
    /// A sensitive action needs a fresh authentication.
    #[error("re-authentication required")]
    ReauthRequired,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("not found: {0}")]
    NotFound(&'static str),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("too many attempts")]
    TooManyRequests,
    /// An external auditor's account used outside its audit's period
    /// (K32.2): `code` says before or after, `date` is the boundary (和暦).
    #[error("auditor access outside the audit period: {code}")]
    AuditorAccess { code: &'static str, date: String },
    /// Something the server needs is missing from its installation (e.g.
    /// the report font): 503 with a message naming the setting.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("internal: {0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(field: &str, code: &str, params: &[(&str, String)]) -> AppError {
        AppError::Invalid(vec![FieldError::new(field, code, params)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated | AppError::SessionLocked | AppError::CardStepRequired => {
                StatusCode::UNAUTHORIZED
            }
            AppError::ReauthRequired => StatusCode::FORBIDDEN,
            AppError::PasswordChangeRequired
            | AppError::Forbidden(_)
            | AppError::Csrf
            | AppError::AuditorAccess { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Db(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem code and its catalog key.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "error.unauthenticated",
            AppError::PasswordChangeRequired => "error.password_change_required",
            AppError::SessionLocked => "error.session_locked",
            AppError::CardStepRequired => "error.card_step_required",
            AppError::ReauthRequired => "error.reauth_required",
            AppError::Forbidden(_) => "error.forbidden",
            AppError::NotFound(_) => "error.not_found",
            AppError::Invalid(_) => "error.invalid",
            AppError::Conflict(c) => c,
            AppError::Csrf => "error.csrf",
            AppError::TooManyRequests => "error.too_many_requests",
            AppError::AuditorAccess { code, .. } => code,
            AppError::Unavailable(code) => code,
            AppError::Db(_) | AppError::Internal(_) => "error.internal",
        }
    }

    /// Logs an internal error under a fresh reference and returns it.
    fn log_internal(&self) -> Option<String> {
        match self {
            AppError::Db(_) | AppError::Internal(_) => {
                let reference = crate::auth::token::random_hex(6);
                tracing::error!(reference = %reference, error = %self, "internal error");
                Some(reference)
            }
            _ => None,
        }
    }
}

/// problem+json body (RFC 9457) with Mamori's extensions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable error code.
    pub code: String,
    /// The first field at fault, for clients that show one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An API error: rendered as problem+json.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let lang = i18n::current();
        let reference = e.log_internal();
        let status = e.status();
        let code = e.code();
        let mut detail = match &e {
            AppError::Forbidden(action) => Some(format!("{}: {action}", i18n::t(lang, code, &[]))),
            AppError::NotFound(what) => Some(format!("{}: {what}", i18n::t(lang, code, &[]))),
            AppError::AuditorAccess { date, .. } => {
                Some(i18n::t(lang, code, &[("date", date.clone())]))
            }
            _ => Some(i18n::t(lang, code, &[])),
        };
        if let Some(r) = reference {
            detail = Some(i18n::t(lang, "error.internal", &[("reference", r)]));
        }
        let errors = match e {
            AppError::Invalid(errors) => errors,
            _ => vec![],
        };
        let problem = Problem {
            type_: format!("urn:mamori:problem:{code}"),
            title: i18n::t(Lang::En, code, &[]),
            status: status.as_u16(),
            detail,
            code: code.into(),
            field: errors.first().map(|e| e.field.clone()),
            errors,
        };
        problem_response(status, &problem)
    }
}

/// A UI error: rendered as a page in the request's language.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        match e {
            AppError::Unauthenticated => {
                return axum::response::Redirect::to("/login").into_response()
            }
            AppError::PasswordChangeRequired => {
                return axum::response::Redirect::to("/password").into_response()
            }
            AppError::SessionLocked => {
                return axum::response::Redirect::to("/lock").into_response()
            }
            AppError::CardStepRequired => {
                return axum::response::Redirect::to("/login/card").into_response()
            }
            AppError::ReauthRequired => {
                return axum::response::Redirect::to("/reauth").into_response()
            }
            _ => {}
        }
        let lang = i18n::current();
        let reference = e.log_internal();
        let status = e.status();
        let mut params = vec![("reference", reference.clone().unwrap_or_default())];
        if let AppError::AuditorAccess { date, .. } = &e {
            params.push(("date", date.clone()));
        }
        let mut message = i18n::t(lang, e.code(), &params);
        if let AppError::Invalid(errors) = &e {
            for fe in errors {
                message.push('\n');
                message.push_str(&fe.message);
            }
        }
        let html = super::templates::render_error(status.as_u16(), &message);
        (status, html).into_response()
    }
}
