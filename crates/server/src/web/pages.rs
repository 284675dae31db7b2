//! Pages that belong to no capability: home, language switch, stylesheet.

use crate::app::{AppState, Routes};
use crate::auth::{session, SessionCtx};
use crate::web::error::PageError;
use crate::web::templates::{render, Chrome};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};

pub fn routes(r: Routes) -> Routes {
    r.get("/", home)
        .get("/lang/{code}", switch_lang)
        .get("/static/mamori.css", css)
}

async fn home(State(state): State<AppState>, ctx: SessionCtx) -> Result<Response, PageError> {
    match session::load_actor(&state, &ctx).await? {
        None if ctx.account_id.is_some() && ctx.locked => Ok(Redirect::to("/lock").into_response()),
        None => Ok(Redirect::to("/login").into_response()),
        Some(a) if a.must_change => Ok(Redirect::to("/password").into_response()),
        Some(actor) => {
            let me = crate::identity::api::me_data(&state, &actor).await?;
            Ok(render("home.html", &Chrome::for_actor(&actor), me)?.into_response())
        }
    }
}

/// Sets the language cookie and goes back. Only `ja` and `en` exist.
async fn switch_lang(Path(code): Path<String>, headers: HeaderMap) -> Response {
    let lang = crate::web::i18n::Lang::parse(&code).unwrap_or(crate::web::i18n::Lang::Ja);
    // Go back only to our own pages.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.find("://").map(|i| &r[i + 3..]))
        .and_then(|r| r.find('/').map(|i| r[i..].to_string()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/lang/"))
        .unwrap_or_else(|| "/".into());
    (
        [(
            header::SET_COOKIE,
            format!(
                "{}={}; Path=/; SameSite=Lax; Max-Age=31536000",
                crate::web::LANG_COOKIE,
                lang.code()
            ),
        )],
        Redirect::to(&back),
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/mamori.css"),
    )
        .into_response()
}
