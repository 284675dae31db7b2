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

/// Applies the middleware every response passes through.
pub fn layers(router: Router<AppState>) -> Router<AppState> {
    router
        .layer(axum::extract::DefaultBodyLimit::max(12 * 1024 * 1024))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(with_lang))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
