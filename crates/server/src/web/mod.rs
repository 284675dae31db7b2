//! The web layer: layout and templates, i18n, CSRF, problem+json, the
//! middleware every response passes through.

pub mod csrf;
pub mod error;
pub mod i18n;
pub mod json;
pub mod pages;
pub mod templates;

use crate::app::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use i18n::Lang;

/// The language cookie set by the switch in the page header.
pub const LANG_COOKIE: &str = "mamori_lang";

async fn with_lang(req: Request, next: Next) -> Response {
    let lang = crate::auth::session::read_cookie(req.headers(), LANG_COOKIE)
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(Lang::Ja);
    i18n::LANG.scope(lang, next.run(req)).await
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The framework's own rejections (a path segment that is not a number, a
/// query string that does not parse, a method not allowed) are plain text;
/// on the API they become problem+json like every other error, naming the
/// part of the request at fault.
async fn api_rejections_as_problems(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !api || !res.status().is_client_error() || !plain {
        return res;
    }
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let field = if text.contains("path") || text.contains("Path") {
        "path"
    } else if text.contains("query") || text.contains("Query") {
        "query"
    } else {
        "request"
    };
    let code = "error.bad_request";
    let message = i18n::t(i18n::current(), code, &[("detail", text.clone())]);
    let problem = error::Problem {
        type_: format!("urn:mamori:problem:{code}"),
        title: i18n::t(Lang::En, code, &[("detail", String::new())]),
        status: status.as_u16(),
        detail: Some(message.clone()),
        code: code.into(),
        field: Some(field.into()),
        errors: vec![error::FieldError {
            field: field.into(),
            code: code.into(),
            clause: None,
            message,
        }],
    };
    error::problem_response(status, &problem)
}

/// Applies the middleware every response passes through.
pub fn layers(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(middleware::from_fn(api_rejections_as_problems))
        .layer(axum::extract::DefaultBodyLimit::max(12 * 1024 * 1024))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(with_lang))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
