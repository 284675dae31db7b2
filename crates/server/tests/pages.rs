//! The server-rendered pages, on both engines: every page in Japanese and
//! English for a representative person of each role, and every form
//! through its validation errors (shown next to the field, with what was
//! typed kept) and its success (303 to the right page, and the change in
//! the database). The personnel CSV upload is driven as a browser sends it:
//! multipart, CSRF token first.

mod common;

use axum::http::{header, Method, StatusCode};
use common::{login_with_role, manager_of, plain_staff, scalar, Client, Response, TestApp};
use serde_json::Value;

const CHIEF: &str = "セキュリティ総括管理者";

fn lang_cookie(lang: &str) -> String {
    format!("mamori_lang={lang}")
}

/// A GET in a language: Japanese is the default (no cookie), English
/// comes with the language cookie the switch sets.
async fn get_in(c: &mut Client, lang: &str, path: &str) -> Response {
    if lang == "ja" {
        c.get(path).await
    } else {
        c.request_with_cookie(Method::GET, path, &lang_cookie(lang))
            .await
    }
}

fn today(app: &TestApp) -> String {
    mamori_server::clock::date_str(app.state.clock().today())
}

// ---------------------------------------------------------------------------
// Reading pages

/// The start of a body, for failure messages.
fn head(html: &str) -> String {
    html.chars().take(1500).collect()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page: {}", head(html)))
        + start.len();
    let j = html[i..]
        .find(end)
        .unwrap_or_else(|| panic!("{end:?} not after {start:?}"));
    &html[i..i + j]
}

fn location(r: &Response) -> String {
    r.headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A 303 to a path starting with `to`; returns the whole Location.
#[track_caller]
fn assert_see_other(r: &Response, to: &str) -> String {
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "expected a redirect to {to}, got: {}",
        head(&r.text())
    );
    let loc = location(r);
    assert!(
        loc.starts_with(to),
        "redirected to {loc:?}, expected {to:?}"
    );
    loc
}

/// Catalog keys that leaked into a page (a missing message shows its key).
fn leaked_key(html: &str) -> Option<String> {
    const PREFIXES: [&str; 14] = [
        "pages.",
        "nav.",
        "me.",
        "people.",
        "password.",
        "field.",
        "error.",
        "login.",
        "records.",
        "common.",
        "home.",
        "session.",
        "ledger.",
        "app.",
    ];
    // Text only: attribute values carry codes such as setting keys.
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(ch),
            _ => {}
        }
    }
    let html = text.as_str();
    let bytes = html.as_bytes();
    for p in PREFIXES {
        for (i, _) in html.match_indices(p) {
            let before = if i == 0 { b' ' } else { bytes[i - 1] };
            let after = bytes.get(i + p.len()).copied().unwrap_or(b' ');
            if !before.is_ascii_alphanumeric()
                && !b"-_/.".contains(&before)
                && after.is_ascii_lowercase()
            {
                let end = (i + 60).min(html.len());
                let end = (end..=html.len())
                    .find(|e| html.is_char_boundary(*e))
                    .unwrap_or(html.len());
                return Some(html[i..end].to_string());
            }
        }
    }
    None
}

/// An HTML page with `status`, in `lang`, whose <title> holds `title`,
/// with no catalog key or unset value showing. Returns the page.
#[track_caller]
fn assert_page(r: &Response, status: StatusCode, lang: &str, title: &str) -> String {
    let html = r.text();
    assert_eq!(r.status, status, "{title}: {}", head(&html));
    assert!(
        r.content_type().starts_with("text/html"),
        "{title}: {}",
        r.content_type()
    );
    assert!(
        html.contains(&format!("<html lang=\"{lang}\">")),
        "{title}: not in {lang}: {}",
        head(&html)
    );
    let t = between(&html, "<title>", "</title>");
    assert!(t.contains(title), "<title>{t}</title> lacks {title:?}");
    if let Some(k) = leaked_key(&html) {
        panic!("{title}: a catalog key shows: {k:?}");
    }
    for bad in [">none<", "undefined", ">None<"] {
        assert!(!html.contains(bad), "{title}: {bad:?} shows");
    }
    html
}

fn h1(html: &str) -> &str {
    between(html, "<h1>", "</h1>")
}

/// The opening tag of the element with this id.
fn tag<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

/// The value typed in an <input>.
fn value_of(html: &str, id: &str) -> String {
    let t = tag(html, id);
    match t.find(" value=\"") {
        Some(i) => t[i + 8..].split('"').next().unwrap().to_string(),
        None => String::new(),
    }
}

/// The text of a <textarea>.
fn textarea_of<'a>(html: &'a str, id: &str) -> &'a str {
    let t = tag(html, id);
    let at = html.find(t).unwrap() + t.len();
    &html[at..at + html[at..].find("</textarea>").unwrap()]
}

/// The value of the selected option of a <select>.
fn selected_of(html: &str, id: &str) -> Option<String> {
    let t = tag(html, id);
    let at = html.find(t).unwrap() + t.len();
    let body = &html[at..at + html[at..].find("</select>").unwrap()];
    body.split("<option")
        .find(|o| o.contains(" selected"))
        .map(|o| between(o, "value=\"", "\"").to_string())
}

/// The field is marked invalid, points at its error, and the error comes
/// right after it (before the next label) and says `message`.
#[track_caller]
fn assert_field_error(html: &str, id: &str, message: &str) {
    let t = tag(html, id);
    assert!(
        t.contains("aria-invalid=\"true\""),
        "{id} not marked invalid: {t}"
    );
    assert!(
        t.contains(&format!("{id}-error")),
        "{id} not described by its error: {t}"
    );
    let after = html.find(t).unwrap() + t.len();
    let err = html
        .find(&format!("id=\"{id}-error\""))
        .unwrap_or_else(|| panic!("no error shown for {id}"));
    assert!(err > after, "the error for {id} comes before the field");
    let gap = &html[after..err];
    assert!(
        !gap.contains("<label"),
        "the error for {id} is not next to it: {gap}"
    );
    let text = &html[err..err + html[err..].find("</div>").unwrap()];
    assert!(
        text.contains(message),
        "the error for {id} says {text:?}, expected {message:?}"
    );
}

#[track_caller]
fn assert_no_field_error(html: &str, id: &str) {
    assert!(
        !html.contains(&format!("id=\"{id}-error\"")),
        "unexpected error for {id}"
    );
}

/// The checks above fail when they should.
#[test]
fn page_checks_catch_what_they_are_for() {
    let fails = |f: &dyn Fn()| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err();
    assert!(leaked_key("<p>pages.org.title</p>").is_some());
    assert!(leaked_key("<h1>Settings</h1><p>Check it.</p>").is_none());
    assert!(leaked_key("<input name=\"key\" value=\"password.max_age_days\">").is_none());
    let good = concat!(
        "<input id=\"a\" name=\"a\" value=\"typed\" aria-invalid=\"true\" aria-describedby=\"a-error\">",
        "<p class=\"hint\">hint</p><div class=\"field-error\" id=\"a-error\"><p>入力してください。</p></div>",
        "<label for=\"b\">B</label><input id=\"b\" name=\"b\">",
    );
    assert_field_error(good, "a", "入力してください。");
    assert_no_field_error(good, "b");
    assert_eq!(value_of(good, "a"), "typed");
    assert_eq!(value_of(good, "b"), "");
    assert!(fails(&|| assert_field_error(good, "a", "別の誤り")));
    assert!(fails(&|| assert_field_error(
        good,
        "b",
        "入力してください。"
    )));
    assert!(fails(&|| assert_no_field_error(good, "a")));
    let far = good.replace(
        "<p class=\"hint\">hint</p>",
        "<label for=\"c\">C</label><input id=\"c\">",
    );
    assert!(fails(&|| assert_field_error(
        &far,
        "a",
        "入力してください。"
    )));
    let unmarked = good.replace(" aria-invalid=\"true\"", "");
    assert!(fails(&|| assert_field_error(
        &unmarked,
        "a",
        "入力してください。"
    )));
    let select = "<select id=\"s\" name=\"s\"><option value=\"1\">1</option><option value=\"2\" selected>2</option></select>";
    assert_eq!(selected_of(select, "s").as_deref(), Some("2"));
    assert_eq!(selected_of(&select.replace(" selected", ""), "s"), None);
}

// ---------------------------------------------------------------------------
// Looking things up

async fn unit_id(c: &mut Client, code: &str) -> i64 {
    c.get("/api/v1/org-units")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["code"] == code)
        .unwrap_or_else(|| panic!("no unit {code}"))["id"]
        .as_i64()
        .unwrap()
}

/// A person by employee number, through the API (None if absent).
async fn person(c: &mut Client, number: &str) -> Option<Value> {
    let r = c.get(&format!("/api/v1/people?q={number}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["employee_number"] == number)
        .cloned()
}

async fn person_id(c: &mut Client, number: &str) -> i64 {
    person(c, number).await.expect("person")["id"]
        .as_i64()
        .unwrap()
}

async fn try_login(app: &TestApp, login: &str, password: &str) -> Response {
    app.client()
        .post_json(
            "/api/v1/session",
            &serde_json::json!({ "login": login, "password": password }),
        )
        .await
}

// ---------------------------------------------------------------------------
// Every page, both languages

/// Columns of the page table.
const ROLES: [&str; 9] = [
    "staff", "leader", "operator", "viewer", "manager", "chief", "director", "cio", "auditor",
];

/// One person per role, as in the permission matrix: unit-scoped ones in
/// 戸籍住民課 so its pages are in their scope.
fn cast(app: &TestApp) -> Vec<String> {
    let find = |role: &str, unit: &str| {
        app.logins
            .iter()
            .find(|(_, u, roles)| {
                (unit.is_empty() || u == unit) && roles.split('・').any(|r| r == role)
            })
            .map(|(l, _, _)| l.clone())
            .unwrap_or_else(|| panic!("no {role} in {unit}"))
    };
    vec![
        plain_staff(app, "企画課"),
        find("情報化推進リーダー", "戸籍住民課"),
        find("運用管理者", "情報政策課"),
        find("指名閲覧者", "戸籍住民課"),
        manager_of(app, "戸籍住民課"),
        find(CHIEF, ""),
        find("セキュリティ統括者", ""),
        find("最高情報統括責任者", ""),
        find("外部監査人", ""),
    ]
}

/// The page routes rendered by `every_page_in_japanese_and_english_for_each_role`
/// (the login page to a visitor there too).
const RENDERED: [&str; 17] = [
    "/",
    "/me",
    "/password",
    "/org",
    "/org/units/{id}",
    "/people",
    "/people/{id}",
    "/people/new-event",
    "/people/import",
    "/accounts",
    "/settings",
    "/records",
    "/login",
    "/assets",
    "/assets/{id}",
    "/access",
    "/access-reviews/{id}",
];

/// A page added to the org, people or account pages without a row in the
/// table below fails here.
#[test]
fn every_page_route_is_rendered_here() {
    let missing: Vec<&str> = mamori_server::app::route_table()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.path)
        .filter(|p| {
            !p.starts_with("/api/")
                && !["/healthz", "/static/mamori.css", "/lang/{code}"].contains(p)
        })
        // The ledger's pages (search, analysis, evidence) are not covered here.
        .filter(|p| !p.starts_with("/ledger/"))
        // The card and session pages are rendered in both languages in cards.rs.
        .filter(|p| {
            ![
                "/me/cards",
                "/cards",
                "/login/card",
                "/lock",
                "/reauth",
                "/static/cards.js",
            ]
            .contains(p)
        })
        // The self-inspection pages are rendered in both languages in `inspections.rs`.
        .filter(|p| !p.starts_with("/inspections"))
        // The incident and failure pages are rendered in `incidents.rs`.
        .filter(|p| {
            !(p.starts_with("/incidents")
                || p.starts_with("/failures")
                || p.starts_with("/failure-procedures"))
        })
        // The catalog and policy-version pages are rendered in `catalog.rs`.
        .filter(|p| !(p.starts_with("/catalog") || p.starts_with("/policy/")))
        // The audit, finding and report pages are rendered in `audits.rs`
        // and `reports.rs`.
        .filter(|p| {
            !(p.starts_with("/audits") || p.starts_with("/findings") || p.starts_with("/reports"))
        })
        // The dashboard, check and training pages are rendered in `compliance.rs`.
        .filter(|p| !(p.starts_with("/compliance") || p.starts_with("/training")))
        .filter(|p| !RENDERED.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "pages this file does not render: {missing:?}"
    );
}

both_engines!(
    every_page_in_japanese_and_english_for_each_role,
    |app: TestApp| async move {
        let chief = login_with_role(&app, CHIEF);
        let mut ch = app.logged_in(&chief).await;
        let koseki = unit_id(&mut ch, "koseki").await;
        let target = plain_staff(&app, "戸籍住民課");
        let target_p = person(&mut ch, &target).await.unwrap();
        let pid = target_p["id"].as_i64().unwrap();
        let name = target_p["name_kanji"].as_str().unwrap().to_string();
        let q = format!("/people?q={target}");
        let unit_path = format!("/org/units/{koseki}");
        let person_path = format!("/people/{pid}");
        let unit_ja = "戸籍住民課 — 組織と役割".to_string();
        let unit_en = "戸籍住民課 — Organisation and roles".to_string();
        let person_ja = format!("{name} — 職員");
        let person_en = format!("{name} — People");
        let juki = scalar(&app, "SELECT id FROM assets WHERE code = 'juki'").await;
        let asset_path = format!("/assets/{juki}");
        let mut manager = app.logged_in(&manager_of(&app, "戸籍住民課")).await;
        let review = manager
            .request(
                Method::POST,
                &format!("/api/v1/assets/{juki}/reviews"),
                None,
                vec![],
            )
            .await
            .json()["id"]
            .as_i64()
            .unwrap();
        let review_path = format!("/access-reviews/{review}");
        let review_ja = format!("アクセス権限の棚卸し #{review}");
        let review_en = format!("Access review #{review}");
        // (path, Japanese title, English title, who may: y/n per ROLES)
        let pages: Vec<(&str, &str, &str, &str)> = vec![
            ("/", "ホーム", "Home", "yyyyyyyyy"),
            ("/me", "マイページ", "My page", "yyyyyyyyy"),
            (
                "/password",
                "パスワードの変更",
                "Change password",
                "yyyyyyyyy",
            ),
            ("/org", "組織と役割", "Organisation and roles", "yyyyyyyyy"),
            (&unit_path, &unit_ja, &unit_en, "yyyyyyyyy"),
            ("/people", "職員", "People", "nynnyyyyy"),
            (&q, "職員", "People", "nynnyyyyy"),
            (&person_path, &person_ja, &person_en, "nynnyyyyy"),
            (
                "/people/new-event",
                "人事異動の入力",
                "Enter a personnel event",
                "nnnnyynnn",
            ),
            (
                "/people/import",
                "人事データ取込",
                "Personnel data import",
                "nnnnnynnn",
            ),
            ("/accounts", "アカウント管理", "Accounts", "nnnnyynnn"),
            ("/settings", "設定", "Settings", "nnnnnynnn"),
            ("/records", "操作記録", "Records", "nnnnnyyyy"),
            (
                "/assets",
                "情報資産台帳",
                "Information asset register",
                "yyyyyyyyy",
            ),
            (
                &asset_path,
                "住民基本台帳システム — 情報資産台帳",
                "住民基本台帳システム — Information asset register",
                "yyyyyyyyy",
            ),
            ("/access", "アクセス権限", "Access rights", "yyyyyyyyn"),
            (&review_path, &review_ja, &review_en, "nnnnyyyyy"),
        ];
        for (col, login) in cast(&app).iter().enumerate() {
            let mut c = app.logged_in(login).await;
            for lang in ["ja", "en"] {
                for (path, ja, en, who) in &pages {
                    let r = get_in(&mut c, lang, path).await;
                    let what = format!("{path} as {} in {lang}", ROLES[col]);
                    if who.as_bytes()[col] == b'y' {
                        let title = if lang == "ja" { ja } else { en };
                        let html = assert_page(&r, StatusCode::OK, lang, title);
                        let heading = title.split(" — ").next().unwrap();
                        assert!(h1(&html).contains(heading), "{what}: <h1> {}", h1(&html));
                    } else {
                        let title = if lang == "ja" { "エラー" } else { "Error" };
                        assert_page(&r, StatusCode::FORBIDDEN, lang, title);
                    }
                }
            }
        }

        // What the pages say, beyond their titles.
        let html = get_in(&mut ch, "ja", &q).await.text();
        assert!(
            html.contains(&format!("href=\"/people/{pid}\"")),
            "search finds the person"
        );
        assert!(html.contains(&name));
        let long = format!("/people?q={}", "x".repeat(101));
        let r = get_in(&mut ch, "ja", &long).await;
        let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "職員");
        assert_field_error(&html, "q", "100 文字以内で入力してください。");
        assert_eq!(value_of(&html, "q"), "x".repeat(101), "the query is kept");
        let html = get_in(&mut ch, "en", &person_path).await.text();
        assert!(html.contains(&target) && !html.contains("生年月日"));
        let html = get_in(&mut ch, "en", "/people/999999").await;
        assert_page(&html, StatusCode::NOT_FOUND, "en", "Error");
        let html = get_in(&mut ch, "ja", "/org/units/abc").await;
        assert_page(&html, StatusCode::NOT_FOUND, "ja", "エラー");

        // The login page, to a visitor.
        let mut visitor = app.client();
        let r = get_in(&mut visitor, "ja", "/login").await;
        assert_page(&r, StatusCode::OK, "ja", "ログイン");
        let r = get_in(&mut visitor, "en", "/login").await;
        assert_page(&r, StatusCode::OK, "en", "Log in");
        assert_see_other(&get_in(&mut visitor, "en", "/people").await, "/login");

        // The one-time password page, which only a POST shows.
        for (lang, title) in [("ja", "仮パスワードの発行"), ("en", "One-time password")] {
            let r = ch
                .post_form_with_cookie(
                    &format!("/people/{pid}/reset-password"),
                    &[],
                    &lang_cookie(lang),
                )
                .await;
            let html = assert_page(&r, StatusCode::OK, lang, title);
            assert!(h1(&html).contains(title));
            assert!(!between(&html, "translate=\"no\">", "</span>").is_empty());
        }

        // The language switch sets the cookie and goes back.
        let r = ch
            .send(
                Method::GET,
                "/lang/en",
                &[("referer", "http://mamori.example/people?q=1")],
                vec![],
            )
            .await;
        assert_eq!(location(&r), "/people?q=1");
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let set = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
        assert!(set.starts_with("mamori_lang=en;"), "{set}");
        let r = ch
            .send(
                Method::GET,
                "/lang/ja",
                &[("referer", "http://evil.example//evil.example/")],
                vec![],
            )
            .await;
        assert_eq!(location(&r), "/", "never back to another site");
    }
);

// ---------------------------------------------------------------------------
// The org pages' forms

both_engines!(unit_forms_create_and_edit, |app: TestApp| async move {
    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let root = c
        .get("/api/v1/org-units")
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["kind"] == "ward")
        .unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let units = scalar(&app, "SELECT COUNT(*) FROM org_units").await;

    // Errors sit next to their fields, and what was typed stays.
    let r = c
        .post_form(
            "/org/units",
            &[
                ("code", "bad code!"),
                ("name", ""),
                ("name_en", "Crisis Office"),
                ("kind", "section"),
                ("parent_id", &root),
                ("valid_from", ""),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "組織と役割");
    assert!(html.contains("入力内容を確認してください。"));
    assert_field_error(&html, "new-code", "コードは半角英数字");
    assert_field_error(&html, "new-name", "入力してください。");
    assert_no_field_error(&html, "new-name_en");
    assert_eq!(value_of(&html, "new-code"), "bad code!");
    assert_eq!(value_of(&html, "new-name_en"), "Crisis Office");
    assert_eq!(selected_of(&html, "new-parent_id"), Some(root.clone()));
    assert!(
        html.contains("<details open>"),
        "the form with errors is open"
    );
    // A tampered choice is named as such.
    let r = c
        .post_form(
            "/org/units",
            &[
                ("code", "kikikanri"),
                ("name", "危機管理室"),
                ("kind", "castle"),
                ("parent_id", "zz"),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "組織と役割");
    assert_field_error(&html, "new-kind", "選択肢から選んでください。");
    assert_field_error(&html, "new-parent_id", "選択肢から選んでください。");
    assert_eq!(value_of(&html, "new-name"), "危機管理室");
    // A bad date, in English.
    let r = c
        .post_form_with_cookie(
            "/org/units",
            &[
                ("code", "kikikanri"),
                ("name", "危機管理室"),
                ("kind", "section"),
                ("parent_id", &root),
                ("valid_from", "someday"),
            ],
            &lang_cookie("en"),
        )
        .await;
    let html = assert_page(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "en",
        "Organisation and roles",
    );
    assert!(html.contains("Please check what you entered."));
    assert_field_error(&html, "new-valid_from", "someday");
    assert_eq!(value_of(&html, "new-valid_from"), "someday");
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM org_units").await,
        units,
        "nothing created by a refused form"
    );

    // Success: to the new unit's page, with a notice.
    let r = c
        .post_form(
            "/org/units",
            &[
                ("code", "kikikanri"),
                ("name", "危機管理室"),
                ("name_en", "Crisis Office"),
                ("kind", "section"),
                ("parent_id", &root),
                ("valid_from", "R8.4.1"),
            ],
        )
        .await;
    let loc = assert_see_other(&r, "/org/units/");
    assert!(loc.ends_with("?done=created"), "{loc}");
    let id: i64 = loc["/org/units/".len()..]
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let html = assert_page(
        &c.get(&loc).await,
        StatusCode::OK,
        "ja",
        "危機管理室 — 組織と役割",
    );
    assert!(html.contains("所属を登録しました。"));
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM org_units").await,
        units + 1
    );
    assert_eq!(
        scalar(&app, &format!("SELECT COUNT(*) FROM org_units WHERE id = {id} AND code = 'kikikanri' AND name = '危機管理室' AND valid_from = '2026-04-01' AND parent_id = {root}")).await,
        1
    );
    // The same code again is refused on the code field.
    let r = c
        .post_form(
            "/org/units",
            &[
                ("code", "kikikanri"),
                ("name", "別の室"),
                ("kind", "section"),
                ("parent_id", &root),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "組織と役割");
    assert_field_error(&html, "new-code", "すでに使われています。");

    // Editing: an empty start date is refused, the typed name kept.
    let path = format!("/org/units/{id}");
    let idstr = id.to_string();
    let r = c
        .post_form(
            &path,
            &[
                ("code", "kikikanri"),
                ("name", "危機管理課"),
                ("kind", "section"),
                ("parent_id", &root),
                ("valid_from", ""),
            ],
        )
        .await;
    let html = assert_page(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ja",
        "危機管理室 — 組織と役割",
    );
    assert_field_error(&html, "edit-valid_from", "入力してください。");
    assert_eq!(value_of(&html, "edit-name"), "危機管理課");
    // A unit cannot be its own parent.
    let r = c
        .post_form(
            &path,
            &[
                ("code", "kikikanri"),
                ("name", "危機管理課"),
                ("kind", "section"),
                ("parent_id", &idstr),
                ("valid_from", "2026-04-01"),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "組織と役割");
    assert!(
        html.contains("id=\"edit-parent_id-error\""),
        "{}",
        head(&html)
    );
    assert_eq!(
        scalar(
            &app,
            &format!("SELECT COUNT(*) FROM org_units WHERE id = {id} AND name = '危機管理室'")
        )
        .await,
        1,
        "unchanged after refused edits"
    );
    let r = c
        .post_form(
            &path,
            &[
                ("code", "kikikanri"),
                ("name", "危機管理課"),
                ("name_en", "Crisis Section"),
                ("kind", "section"),
                ("parent_id", &root),
                ("valid_from", "2026-04-01"),
                ("valid_to", "令和12年3月31日"),
            ],
        )
        .await;
    let loc = assert_see_other(&r, &path);
    assert!(loc.ends_with("?done=saved"), "{loc}");
    let html = assert_page(&c.get(&loc).await, StatusCode::OK, "ja", "危機管理課");
    assert!(html.contains("所属の変更を保存しました。"));
    assert_eq!(
        scalar(&app, &format!("SELECT COUNT(*) FROM org_units WHERE id = {id} AND name = '危機管理課' AND valid_to = '2030-03-31'")).await,
        1
    );
});

both_engines!(role_forms_assign_and_end, |app: TestApp| async move {
    let mgr = manager_of(&app, "戸籍住民課");
    let mut m = app.logged_in(&mgr).await;
    let koseki = unit_id(&mut m, "koseki").await;
    let somu = unit_id(&mut m, "somu-ka").await;
    let target = plain_staff(&app, "戸籍住民課");
    let pid = person_id(&mut m, &target).await.to_string();
    let unit_path = format!("/org/units/{koseki}");
    let form_action = format!("action=\"/org/units/{koseki}/roles\"");

    // The manager's own unit offers the unit roles they may hand out, and
    // no ward-wide ones; another unit offers no form.
    let html = assert_page(&m.get(&unit_path).await, StatusCode::OK, "ja", "戸籍住民課");
    assert!(html.contains(&form_action));
    assert!(html.contains("<option value=\"designated_viewer\""));
    assert!(!html.contains("<option value=\"cio\""));
    let html = m.get(&format!("/org/units/{somu}")).await.text();
    assert!(
        !html.contains("/roles\""),
        "no assign form outside the scope"
    );

    let assignments = scalar(&app, "SELECT COUNT(*) FROM role_assignments").await;
    let (pm, roles_path) = (m.clone(), format!("{unit_path}/roles"));
    let post = move |fields: Vec<(&'static str, String)>| {
        let mut m = pm.clone();
        let path = roles_path.clone();
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            m.post_form(&path, &f).await
        }
    };
    let r = post(vec![("role", "designated_viewer".into())]).await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "戸籍住民課");
    assert_field_error(
        &html,
        "assign-employee_number",
        "職員を選ぶか、職員番号を入力してください。",
    );
    assert_eq!(
        selected_of(&html, "assign-role").as_deref(),
        Some("designated_viewer")
    );
    let r = post(vec![
        ("role", "designated_viewer".into()),
        ("employee_number", "0000000".into()),
    ])
    .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "戸籍住民課");
    assert_field_error(
        &html,
        "assign-employee_number",
        "該当する職員が見つかりません。",
    );
    assert_eq!(value_of(&html, "assign-employee_number"), "0000000");
    let r = post(vec![
        ("role", "designated_viewer".into()),
        ("person_id", pid.clone()),
        ("valid_to", "notadate".into()),
    ])
    .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "戸籍住民課");
    assert_field_error(&html, "assign-valid_to", "日付「notadate」を読み取れません");
    assert_eq!(value_of(&html, "assign-valid_to"), "notadate");
    assert_eq!(selected_of(&html, "assign-person_id"), Some(pid.clone()));
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM role_assignments").await,
        assignments
    );

    // Success: back to the unit with a notice, and the role is held.
    let r = post(vec![
        ("role", "designated_viewer".into()),
        ("person_id", pid.clone()),
    ])
    .await;
    let loc = assert_see_other(&r, &format!("{unit_path}?done=assigned"));
    let html = m.get(&loc).await.text();
    assert!(html.contains("役割を割り当てました。"));
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM role_assignments").await,
        assignments + 1
    );
    let held = m
        .get(&format!(
            "/api/v1/role-assignments?person_id={pid}&current=true"
        ))
        .await
        .json();
    let a = held
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["role"] == "designated_viewer")
        .unwrap_or_else(|| panic!("not assigned: {held}"))
        .clone();
    let aid = a["id"].as_i64().unwrap();

    // Ending it: a bad date is shown next to that row's field.
    let end = format!("/org/roles/{aid}/end");
    let r = m
        .post_form(
            &end,
            &[("unit", &koseki.to_string()), ("valid_to", "notadate")],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "戸籍住民課");
    assert_field_error(&html, &format!("end-{aid}-valid_to"), "読み取れません");
    let today = today(&app);
    let r = m
        .post_form(&end, &[("unit", &koseki.to_string()), ("valid_to", &today)])
        .await;
    let loc = assert_see_other(&r, &format!("{unit_path}?done=ended"));
    assert!(m.get(&loc).await.text().contains("役割を終了しました。"));
    assert_eq!(
        scalar(
            &app,
            &format!(
                "SELECT COUNT(*) FROM role_assignments WHERE id = {aid} AND valid_to = '{today}'"
            )
        )
        .await,
        1
    );

    // A manager cannot hand out a ward-wide role.
    let r = m
        .post_form(
            "/org/roles",
            &[
                ("role", "external_auditor"),
                ("employee_number", &target),
                ("valid_to", "R9.3.31"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", head(&r.text()));

    // The chief hands one out from the org page.
    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let auditors = "SELECT COUNT(*) FROM role_assignments WHERE role = 'external_auditor' AND org_unit_id IS NULL";
    let before = scalar(&app, auditors).await;
    let r = c
        .post_form(
            "/org/roles",
            &[
                ("role", "external_auditor"),
                ("employee_number", "0000000"),
                ("valid_to", "R9.3.31"),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "組織と役割");
    assert_field_error(
        &html,
        "assign-employee_number",
        "該当する職員が見つかりません。",
    );
    assert_eq!(value_of(&html, "assign-valid_to"), "R9.3.31");
    assert_eq!(
        selected_of(&html, "assign-role").as_deref(),
        Some("external_auditor")
    );
    assert_eq!(scalar(&app, auditors).await, before);
    let r = c
        .post_form(
            "/org/roles",
            &[
                ("role", "external_auditor"),
                ("employee_number", &target),
                ("valid_to", "R9.3.31"),
            ],
        )
        .await;
    let loc = assert_see_other(&r, "/org?done=assigned");
    let html = c.get(&loc).await.text();
    assert!(html.contains("役割を割り当てました。"));
    assert_eq!(scalar(&app, auditors).await, before + 1);
    assert_eq!(
        scalar(&app, &format!("SELECT COUNT(*) FROM role_assignments WHERE role = 'external_auditor' AND person_id = {pid} AND valid_to = '2027-03-31'")).await,
        1
    );
});

// ---------------------------------------------------------------------------
// The people pages' forms

both_engines!(personnel_event_form, |app: TestApp| async move {
    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let today = today(&app);
    let people = scalar(&app, "SELECT COUNT(*) FROM persons").await;
    let events = scalar(&app, "SELECT COUNT(*) FROM personnel_events").await;

    // Blank required fields say "required", next to each.
    let r = c
        .post_form(
            "/people/new-event",
            &[
                ("kind", "hire"),
                ("employee_number", ""),
                ("effective_date", ""),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事異動の入力");
    assert_field_error(&html, "ev-employee_number", "入力してください。");
    assert_field_error(&html, "ev-effective_date", "入力してください。");

    // A bad birth date: everything typed comes back.
    let (hc, htoday) = (c.clone(), today.clone());
    let hire = move |birth: &'static str| {
        let today = htoday.clone();
        let mut c = hc.clone();
        async move {
            c.post_form(
                "/people/new-event",
                &[
                    ("kind", "hire"),
                    ("employee_number", "912345"),
                    ("effective_date", &today),
                    ("name_kanji", "江戸川 三郎"),
                    ("name_kana", "エドガワ サブロウ"),
                    ("name_romaji", "Edogawa Saburo"),
                    ("birth_date", birth),
                    ("employment", "regular"),
                    ("org_unit_code", "koseki"),
                    ("title", "主事"),
                ],
            )
            .await
        }
    };
    let r = hire("2001-02-30").await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事異動の入力");
    assert_field_error(&html, "ev-birth_date", "日付「2001-02-30」を読み取れません");
    assert_no_field_error(&html, "ev-name_kanji");
    assert_eq!(value_of(&html, "ev-employee_number"), "912345");
    assert_eq!(value_of(&html, "ev-name_kanji"), "江戸川 三郎");
    assert_eq!(value_of(&html, "ev-name_kana"), "エドガワ サブロウ");
    assert_eq!(value_of(&html, "ev-title"), "主事");
    assert_eq!(selected_of(&html, "ev-kind").as_deref(), Some("hire"));
    assert_eq!(
        selected_of(&html, "ev-employment").as_deref(),
        Some("regular")
    );
    assert_eq!(
        selected_of(&html, "ev-org_unit_code").as_deref(),
        Some("koseki")
    );
    assert_eq!(scalar(&app, "SELECT COUNT(*) FROM persons").await, people);
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM personnel_events").await,
        events
    );

    // Success: the person exists and their page says so; no birth date shown.
    let r = hire("S55.1.23").await;
    let loc = assert_see_other(&r, "/people/");
    assert!(loc.ends_with("?done=applied"), "{loc}");
    let html = assert_page(
        &c.get(&loc).await,
        StatusCode::OK,
        "ja",
        "江戸川 三郎 — 職員",
    );
    assert!(html.contains("人事異動を登録し、反映しました。"));
    assert!(html.contains("912345") && html.contains("戸籍住民課"));
    assert!(
        !html.contains("1980") && !html.contains("昭和55"),
        "birth date shown"
    );
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM persons").await,
        people + 1
    );
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM persons WHERE employee_number = '912345' AND name_kanji = '江戸川 三郎' AND birth_date = '1980-01-23'").await,
        1
    );
    let p = person(&mut c, "912345").await.expect("hired");
    assert_eq!(p["org_unit_name"], "戸籍住民課");
    assert_eq!(p["status"], "active");
    // The same number cannot be hired twice.
    let r = hire("S55.1.23").await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事異動の入力");
    assert!(
        html.contains("id=\"ev-employee_number-error\""),
        "{}",
        head(&html)
    );
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM persons").await,
        people + 1
    );

    // A manager's form offers only their units, and a transfer out of
    // them is refused on the form, with nothing changed.
    let mgr = manager_of(&app, "戸籍住民課");
    let mut m = app.logged_in(&mgr).await;
    let html = assert_page(
        &m.get("/people/new-event").await,
        StatusCode::OK,
        "ja",
        "人事異動の入力",
    );
    assert!(html.contains("<option value=\"koseki\""));
    assert!(!html.contains("<option value=\"somu-ka\""));
    let staff = plain_staff(&app, "戸籍住民課");
    let r = m
        .post_form(
            "/people/new-event",
            &[
                ("kind", "transfer"),
                ("employee_number", &staff),
                ("effective_date", &today),
                ("org_unit_code", "somu-ka"),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事異動の入力");
    assert!(
        html.contains("あなたの所管外の所属です。"),
        "{}",
        head(&html)
    );
    assert_eq!(value_of(&html, "ev-employee_number"), staff);
    assert_eq!(
        person(&mut c, &staff).await.unwrap()["org_unit_name"],
        "戸籍住民課"
    );
});

both_engines!(
    person_page_account_actions_and_one_time_password,
    |app: TestApp| async move {
        let chief = login_with_role(&app, CHIEF);
        let mut c = app.logged_in(&chief).await;
        let target = plain_staff(&app, "戸籍住民課");
        let pw = app.passwords[&target].clone();
        let pid = person_id(&mut c, &target).await;
        let page = format!("/people/{pid}");
        let action = format!("/people/{pid}/account");
        let mut t = app.logged_in(&target).await;

        let r = c.post_form(&action, &[("action", "lock")]).await;
        let loc = assert_see_other(&r, &format!("{page}?done=lock"));
        let html = c.get(&loc).await.text();
        assert!(html.contains("アカウントをロックしました。"));
        assert!(
            html.contains("value=\"unlock\""),
            "the page now offers unlock"
        );
        assert_eq!(t.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            try_login(&app, &target, &pw).await.status,
            StatusCode::CONFLICT
        );

        let r = c.post_form(&action, &[("action", "unlock")]).await;
        let loc = assert_see_other(&r, &format!("{page}?done=unlock"));
        assert!(c
            .get(&loc)
            .await
            .text()
            .contains("アカウントのロックを解除しました。"));
        assert_eq!(try_login(&app, &target, &pw).await.status, StatusCode::OK);

        let mut t = app.logged_in(&target).await;
        let r = c.post_form(&action, &[("action", "end_sessions")]).await;
        let loc = assert_see_other(&r, &format!("{page}?done=end_sessions"));
        assert!(c
            .get(&loc)
            .await
            .text()
            .contains("セッションをすべて終了しました。"));
        assert_eq!(t.get("/api/v1/me").await.status, StatusCode::UNAUTHORIZED);

        let r = c
            .post_form(&action, &[("action", "force_password_change")])
            .await;
        let loc = assert_see_other(&r, &format!("{page}?done=force_password_change"));
        assert!(c
            .get(&loc)
            .await
            .text()
            .contains("パスワードの変更を求めます。"));
        let r = try_login(&app, &target, &pw).await;
        assert_eq!(r.json()["must_change_password"], true);

        let r = c.post_form(&action, &[("action", "explode")]).await;
        assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "エラー");

        // The one-time password: shown once, not cached, and it works.
        let r = c
            .post_form(&format!("/people/{pid}/reset-password"), &[])
            .await;
        let html = assert_page(&r, StatusCode::OK, "ja", "仮パスワードの発行");
        assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        let otp = between(&html, "translate=\"no\">", "</span>").to_string();
        assert!(otp.len() >= 8, "{otp:?}");
        assert!(html.contains(&target));
        let r = try_login(&app, &target, &otp).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.json()["must_change_password"], true);
        assert_eq!(
            try_login(&app, &target, &pw).await.status,
            StatusCode::CONFLICT,
            "the old password no longer works"
        );
        // Without the CSRF token nothing is issued.
        let r = c
            .request(
                Method::POST,
                &format!("/people/{pid}/reset-password"),
                Some("application/x-www-form-urlencoded"),
                b"".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(try_login(&app, &target, &otp).await.status, StatusCode::OK);

        // A manager reaches only their own units' people.
        let mgr = manager_of(&app, "戸籍住民課");
        let mut m = app.logged_in(&mgr).await;
        let html = assert_page(&m.get(&page).await, StatusCode::OK, "ja", "職員");
        assert!(html.contains(&format!("action=\"{action}\"")));
        let other = plain_staff(&app, "総務課");
        let other_id = person_id(&mut c, &other).await;
        let r = m.get(&format!("/people/{other_id}")).await;
        assert_page(&r, StatusCode::FORBIDDEN, "ja", "エラー");
        let r = m
            .post_form(
                &format!("/people/{other_id}/account"),
                &[("action", "lock")],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let opw = app.passwords[&other].clone();
        assert_eq!(try_login(&app, &other, &opw).await.status, StatusCode::OK);
    }
);

both_engines!(accounts_page_forms, |app: TestApp| async move {
    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let koseki = unit_id(&mut c, "koseki").await.to_string();
    let owner = plain_staff(&app, "戸籍住民課");
    let accounts = scalar(&app, "SELECT COUNT(*) FROM accounts").await;
    let justification =
        "窓口端末の交代勤務で個人IDを切り替えられないため（システム構築上やむを得ない）";

    // A shared account: unknown owner, then too short a justification.
    let r = c
        .post_form(
            "/accounts/shared",
            &[
                ("login", "madoguchi"),
                ("justification", "短い"),
                ("owner", "0000000"),
                ("org_unit_id", &koseki),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "アカウント管理");
    assert_field_error(&html, "shared-owner", "該当する職員が見つかりません。");
    assert_eq!(value_of(&html, "shared-login"), "madoguchi");
    assert_eq!(value_of(&html, "shared-owner"), "0000000");
    assert_eq!(textarea_of(&html, "shared-justification"), "短い");
    assert_eq!(
        selected_of(&html, "shared-org_unit_id"),
        Some(koseki.clone())
    );
    let r = c
        .post_form(
            "/accounts/shared",
            &[
                ("login", "madoguchi"),
                ("justification", "短い"),
                ("owner", &owner),
                ("org_unit_id", &koseki),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "アカウント管理");
    assert!(
        html.contains("id=\"shared-justification-error\""),
        "{}",
        head(&html)
    );
    assert_no_field_error(&html, "shared-owner");
    let r = c
        .post_form(
            "/accounts/shared",
            &[
                ("login", "madoguchi"),
                ("justification", justification),
                ("owner", &owner),
                ("org_unit_id", ""),
            ],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "アカウント管理");
    assert_field_error(&html, "shared-org_unit_id", "入力してください。");
    assert_eq!(textarea_of(&html, "shared-justification"), justification);
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM accounts").await,
        accounts
    );

    let r = c
        .post_form(
            "/accounts/shared",
            &[
                ("login", "madoguchi"),
                ("justification", justification),
                ("owner", &owner),
                ("org_unit_id", &koseki),
            ],
        )
        .await;
    let loc = assert_see_other(&r, "/accounts?done=shared");
    let html = c.get(&loc).await.text();
    assert!(html.contains("共用アカウントを登録しました。"));
    assert!(html.contains("<code>madoguchi</code> <span class=\"badge badge-warn\">共用</span>"));
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM accounts").await,
        accounts + 1
    );
    assert_eq!(
        scalar(&app, &format!("SELECT COUNT(*) FROM accounts WHERE login = 'madoguchi' AND shared_org_unit_id = {koseki} AND person_id IS NULL")).await,
        1
    );

    // A forced password change for a unit: reason and unit are required.
    let must = "SELECT COUNT(*) FROM accounts WHERE must_change <> 0";
    let forced_before = scalar(&app, must).await;
    let r = c
        .post_form(
            "/accounts/force-change",
            &[("unit", &koseki), ("reason", "")],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "アカウント管理");
    assert_field_error(&html, "force-reason", "入力してください。");
    assert_eq!(selected_of(&html, "force-unit"), Some(koseki.clone()));
    let r = c
        .post_form(
            "/accounts/force-change",
            &[("unit", ""), ("reason", "不正アクセスの疑い")],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "アカウント管理");
    assert_field_error(&html, "force-unit", "入力してください。");
    assert_eq!(textarea_of(&html, "force-reason"), "不正アクセスの疑い");
    assert_eq!(scalar(&app, must).await, forced_before);

    let r = c
        .post_form(
            "/accounts/force-change",
            &[("unit", &koseki), ("reason", "不正アクセスの疑い")],
        )
        .await;
    let loc = assert_see_other(&r, "/accounts?done=forced&count=");
    let n: i64 = loc.rsplit('=').next().unwrap().parse().unwrap();
    assert!(n >= 2, "{loc}");
    // The unit's people and its new shared account (which already waited
    // for its first password) are the n.
    let in_koseki = format!("SELECT COUNT(*) FROM accounts a JOIN persons p ON p.id = a.person_id WHERE p.org_unit_id = {koseki} AND a.must_change <> 0");
    assert_eq!(
        scalar(&app, &in_koseki).await,
        n - 1,
        "every person in the unit"
    );
    assert_eq!(
        scalar(&app, must).await,
        forced_before + n - 1,
        "and no one else"
    );
    let html = c.get(&loc).await.text();
    assert!(
        html.contains(&format!("{n} 件のアカウントに")),
        "{}",
        head(&html)
    );
    assert!(
        html.contains(&owner),
        "the attention list shows the forced account"
    );
    let r = try_login(&app, &owner, &app.passwords[&owner]).await;
    assert_eq!(r.json()["must_change_password"], true);

    // A manager may not force the whole ward.
    let mgr = manager_of(&app, "総務課");
    let mut m = app.logged_in(&mgr).await;
    let html = assert_page(
        &m.get("/accounts").await,
        StatusCode::OK,
        "ja",
        "アカウント管理",
    );
    assert!(!html.contains("value=\"ward\""));
    let r = m
        .post_form(
            "/accounts/force-change",
            &[("unit", "ward"), ("reason", "不正アクセスの疑い")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let staff = plain_staff(&app, "企画課");
    let r = try_login(&app, &staff, &app.passwords[&staff]).await;
    assert_eq!(r.json()["must_change_password"], false);
});

both_engines!(settings_form, |app: TestApp| async move {
    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let id = "password-max_age_days-value";
    let r = c
        .post_form(
            "/settings",
            &[("key", "password.max_age_days"), ("value", "abc")],
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "設定");
    assert_field_error(&html, id, "整数で入力してください。");
    assert_eq!(value_of(&html, id), "abc");
    assert_no_field_error(&html, "password-warn_days-value");
    let r = c
        .post_form_with_cookie(
            "/settings",
            &[("key", "password.max_age_days"), ("value", "99999")],
            &lang_cookie("en"),
        )
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "en", "Settings");
    assert_field_error(&html, id, "3650");
    assert_eq!(value_of(&html, id), "99999");
    let r = c
        .post_form("/settings", &[("key", "nope"), ("value", "1")])
        .await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "設定");
    assert!(html.contains("<div class=\"error\" role=\"alert\">"));
    assert!(!html.contains("aria-invalid"));
    let days = c.get("/api/v1/me").await.json()["password_expires_in_days"]
        .as_i64()
        .unwrap();
    assert!(days > 90, "{days}");

    let r = c
        .post_form(
            "/settings",
            &[("key", "password.max_age_days"), ("value", "90")],
        )
        .await;
    let loc = assert_see_other(&r, "/settings?done=saved");
    let html = c.get(&loc).await.text();
    assert!(html.contains("設定を保存しました。"));
    assert_eq!(value_of(&html, id), "90");
    let days = c.get("/api/v1/me").await.json()["password_expires_in_days"]
        .as_i64()
        .unwrap();
    assert!(days <= 90, "the new maximum age applies: {days}");
});

both_engines!(
    own_account_pages_password_and_sessions,
    |app: TestApp| async move {
        let staff = plain_staff(&app, "企画課");
        let pw = app.passwords[&staff].clone();
        let mut c = app.logged_in(&staff).await;
        let new = "Hotaru-Kawa-Semi-Mado7";
        let form = |current: &str, new: &str, confirm: &str| {
            vec![
                ("current_password".to_string(), current.to_string()),
                ("new_password".to_string(), new.to_string()),
                ("confirm_password".to_string(), confirm.to_string()),
            ]
        };
        for (fields, message) in [
            (
                form(&pw, new, "Hotaru-Kawa-Semi-Mado8"),
                "確認用のパスワードが一致しません。",
            ),
            (form(&pw, "short", "short"), "K11.1.2"),
            (form("wrong-password", new, new), ""),
        ] {
            let f: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let r = c.post_form("/password", &f).await;
            let html = assert_page(&r, r.status, "ja", "パスワードの変更");
            assert!(
                r.status.is_success() || r.status.is_client_error(),
                "{}",
                r.status
            );
            let errors = between(&html, "id=\"password-errors\"", "</div>");
            assert!(errors.contains(message), "{errors}");
            assert!(!html.contains("id=\"password-done\""));
        }
        assert_eq!(try_login(&app, &staff, &pw).await.status, StatusCode::OK);
        let f = form(&pw, new, new);
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = c.post_form("/password", &f).await;
        let html = assert_page(&r, StatusCode::OK, "ja", "パスワードの変更");
        assert!(html.contains("id=\"password-done\""), "{}", head(&html));
        assert_eq!(try_login(&app, &staff, new).await.status, StatusCode::OK);
        assert_eq!(
            try_login(&app, &staff, &pw).await.status,
            StatusCode::CONFLICT
        );

        // My page lists my other session, and ends it.
        let mut other = app.client();
        other.ip = "10.0.0.9:1".parse().unwrap();
        let r = other
            .post_json(
                "/api/v1/session",
                &serde_json::json!({ "login": staff, "password": new }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let html = assert_page(&c.get("/me").await, StatusCode::OK, "ja", "マイページ");
        assert!(html.contains("10.0.0.9"), "{}", head(&html));
        let row = html
            .split("<tr>")
            .find(|row| row.contains("10.0.0.9"))
            .unwrap();
        let sid = between(row, "name=\"id\" value=\"", "\"").to_string();
        let r = c.post_form("/me/sessions/end", &[("id", &sid)]).await;
        assert_see_other(&r, "/me");
        assert_eq!(
            other.get("/api/v1/me").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(c.get("/api/v1/me").await.status, StatusCode::OK);
        assert!(!c.get("/me").await.text().contains("10.0.0.9"));
    }
);

// ---------------------------------------------------------------------------
// The personnel CSV upload

const BOUNDARY: &str = "----mamoriTestBoundary7MA4YWxkTrZu0gW";

enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a [u8]),
}

/// A multipart/form-data body as a browser sends it.
fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p {
            Part::Text(name, value) => out.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            ),
            Part::File(filename, content) => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n"
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(content);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    out
}

/// The import form as the page lays it out: token, file, checkbox.
async fn upload(
    c: &mut Client,
    lang: &str,
    csrf: &str,
    file: Option<&[u8]>,
    apply_valid: bool,
) -> Response {
    let mut parts = vec![Part::Text("csrf", csrf)];
    if let Some(f) = file {
        parts.push(Part::File("jinji.csv", f));
    }
    if apply_valid {
        parts.push(Part::Text("apply_valid", "1"));
    }
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    c.send(
        Method::POST,
        "/people/import",
        &[("content-type", &ct), ("cookie", &lang_cookie(lang))],
        multipart(&parts),
    )
    .await
}

const CSV_HEADER: &str =
    "職員番号,異動種別,発令日,氏名,氏名カナ,氏名ローマ字,生年月日,雇用形態,所属コード,役職,備考\n";

both_engines!(personnel_csv_upload, |app: TestApp| async move {
    let chief = login_with_role(&app, CHIEF);
    let mut c = app.logged_in(&chief).await;
    let csrf = c.csrf().await;
    let today = today(&app);
    let people = scalar(&app, "SELECT COUNT(*) FROM persons").await;
    let events = scalar(&app, "SELECT COUNT(*) FROM personnel_events").await;
    let csv = format!(
        "{CSV_HEADER}910001,採用,{today},新宿 一郎,シンジュク イチロウ,Shinjuku Ichiro,1990-01-02,正規,koseki,主事,\n\
         910002,採用,{today},品川 二郎,シナガワ ジロウ,,1991-02-03,非常勤,no-such-unit,,\n\
         910003,昇進,{today},,,,,,,,\n"
    );
    let unchanged = |what: &str| {
        let what = what.to_string();
        let app = &app;
        async move {
            assert_eq!(
                scalar(app, "SELECT COUNT(*) FROM persons").await,
                people,
                "{what}: a person was written"
            );
            assert_eq!(
                scalar(app, "SELECT COUNT(*) FROM personnel_events").await,
                events,
                "{what}: an event was written"
            );
        }
    };

    // A wrong token, or the token after the file: refused before reading.
    let r = upload(&mut c, "ja", "wrong", Some(csv.as_bytes()), true).await;
    assert_page(&r, StatusCode::FORBIDDEN, "ja", "エラー");
    let body = multipart(&[
        Part::File("jinji.csv", csv.as_bytes()),
        Part::Text("csrf", &csrf),
        Part::Text("apply_valid", "1"),
    ]);
    let ct = format!("multipart/form-data; boundary={BOUNDARY}");
    let r = c
        .request(Method::POST, "/people/import", Some(&ct), body)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Not multipart at all.
    let r = c
        .request(
            Method::POST,
            "/people/import",
            Some("application/x-www-form-urlencoded"),
            format!("csrf={csrf}").into_bytes(),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    unchanged("refused uploads").await;

    // No file, or an empty one: the error sits at the file field.
    let r = upload(&mut c, "ja", &csrf, None, true).await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事データ取込");
    assert_field_error(&html, "import-file", "CSVファイルを選んでください。");
    assert!(
        tag(&html, "import-apply_valid").contains("checked"),
        "the checkbox is kept"
    );
    let r = upload(&mut c, "en", &csrf, Some(b""), false).await;
    let html = assert_page(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "en",
        "Personnel data import",
    );
    assert_field_error(&html, "import-file", "Choose a CSV file.");
    assert!(!tag(&html, "import-apply_valid").contains("checked"));
    // Not a personnel file.
    let r = upload(&mut c, "ja", &csrf, Some(b"hello,world\n1,2\n"), false).await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事データ取込");
    assert!(html.contains("id=\"result-h\""), "a report is shown");
    unchanged("no file").await;

    // Bad rows, all or nothing: the report names the lines, nothing is written.
    let r = upload(&mut c, "ja", &csrf, Some(csv.as_bytes()), false).await;
    let html = assert_page(&r, StatusCode::UNPROCESSABLE_ENTITY, "ja", "人事データ取込");
    assert!(html.contains("何も取り込んでいません"), "{}", head(&html));
    assert!(html.contains("<tr><td>3</td>") && html.contains("<tr><td>4</td>"));
    assert!(!html.contains("<tr><td>2</td>"), "line 2 is fine");
    assert!(html.contains("<dd>UTF-8</dd>"));
    unchanged("an all-or-nothing import with errors").await;
    assert!(person(&mut c, "910001").await.is_none());

    // With the checkbox the good row goes in and the bad ones do not.
    let r = upload(&mut c, "ja", &csrf, Some(csv.as_bytes()), true).await;
    let html = assert_page(&r, StatusCode::OK, "ja", "人事データ取込");
    assert!(
        html.contains("正しい 1 行を取り込みました。"),
        "{}",
        head(&html)
    );
    assert!(tag(&html, "import-apply_valid").contains("checked"));
    let p = person(&mut c, "910001").await.expect("imported");
    assert_eq!(p["name_kanji"], "新宿 一郎");
    assert_eq!(p["org_unit_name"], "戸籍住民課");
    assert!(html.contains(&format!("href=\"/people/{}\"", p["id"])));
    assert!(person(&mut c, "910002").await.is_none());
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM persons").await,
        people + 1
    );

    // A Shift_JIS file, as Excel saves it, imports with its names intact.
    let sjis_csv = format!(
        "{CSV_HEADER}910004,採用,{today},葛西 花子,カサイ ハナコ,,H10.7.7,非常勤,kasai,,窓口\n\
         910001,異動,{today},,,,,,koiwa,係長,\n"
    );
    let (sjis, _, bad) = encoding_rs::SHIFT_JIS.encode(&sjis_csv);
    assert!(!bad);
    assert!(std::str::from_utf8(&sjis).is_err(), "really not UTF-8");
    let r = upload(&mut c, "en", &csrf, Some(&sjis), false).await;
    let html = assert_page(&r, StatusCode::OK, "en", "Personnel data import");
    assert!(html.contains("<dd>Shift_JIS</dd>"), "{}", head(&html));
    let p = person(&mut c, "910004")
        .await
        .expect("imported from Shift_JIS");
    assert_eq!(p["name_kanji"], "葛西 花子");
    assert_eq!(p["name_kana"], "カサイ ハナコ");
    assert_eq!(p["org_unit_name"], "江戸川区葛西事務所");
    let p = person(&mut c, "910001").await.unwrap();
    assert_eq!(p["org_unit_name"], "江戸川区小岩事務所");
    assert_eq!(p["title"], "係長");
    assert_eq!(
        scalar(&app, "SELECT COUNT(*) FROM persons").await,
        people + 2
    );
});
