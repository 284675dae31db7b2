//! No input yields a 5xx (SPEC §6): every JSON route is sent garbage by a
//! user who may use it, and every page and API route is asked for in
//! English and Japanese.

mod common;

use axum::http::Method;
use common::TestApp;

const GARBAGE: &[&[u8]] = &[
    b"",
    b"null",
    b"[]",
    b"{}",
    b"{\"a\":",
    b"\xff\xfe\x00garbage",
    b"{\"login\": 1e400, \"password\": [], \"code\": {\"x\": null}}",
    b"{\"employee_number\": \"\xe2\x80\xae123\", \"kind\": \"hire\", \"effective_date\": \"R99999999999.1.1\"}",
    b"{\"valid_to\": \"\\u0000\", \"reason\": \"\\ud800\"}",
];

async fn garbage_never_breaks_the_server(app: TestApp) {
    let chief = common::login_with_role(&app, "セキュリティ総括管理者");
    for route in mamori_server::app::route_table() {
        if !route.path.starts_with("/api/")
            || route.method == "GET"
            || route.path == "/api/v1/session" && route.method == "DELETE"
        {
            continue;
        }
        let path = route.path.replace("{id}", "1");
        for body in GARBAGE {
            for ct in [
                "application/json",
                "text/csv",
                "application/x-www-form-urlencoded",
            ] {
                let mut c = app.logged_in(&chief).await;
                let r = c
                    .request(
                        Method::from_bytes(route.method.as_bytes()).unwrap(),
                        &path,
                        Some(ct),
                        body.to_vec(),
                    )
                    .await;
                assert!(
                    !r.status.is_server_error(),
                    "{} {path} {ct} {:?}: {} {}",
                    route.method,
                    String::from_utf8_lossy(body),
                    r.status,
                    r.text()
                );
                if r.status.is_client_error() && route.path != "/api/v1/personnel-events/import" {
                    assert_eq!(
                        r.content_type(),
                        "application/problem+json",
                        "{} {path}",
                        route.method
                    );
                }
            }
        }
    }
    // Odd query strings and ids.
    let mut c = app.logged_in(&chief).await;
    for path in [
        "/api/v1/people?q=%00%ff",
        "/api/v1/people?limit=-5",
        "/api/v1/people/999999999999",
        "/api/v1/people/abc",
        "/api/v1/role-assignments?person_id=x",
        "/api/v1/approver?clause=K13.3&org_unit_id=99999",
        "/api/v1/records?before=-1&limit=100000",
        "/api/v1/org-units/-1",
        "/api/v1/assets/abc",
        "/api/v1/assets/1/access?at=yesterday",
        "/api/v1/assets/1/grants?ended=maybe",
        "/people/abc",
        "/org/units/0",
        "/records?action=%25%25",
    ] {
        let r = c.get(path).await;
        assert!(
            !r.status.is_server_error(),
            "GET {path}: {} {}",
            r.status,
            r.text()
        );
        if path.starts_with("/api/") && r.status.is_client_error() {
            assert_eq!(r.content_type(), "application/problem+json", "GET {path}");
        }
    }
}

both_engines!(garbage_bodies_and_queries, garbage_never_breaks_the_server);

async fn english_is_available(app: TestApp) {
    let mut c = app.client();
    let r = c.get("/login").await;
    assert!(r.text().contains("ログイン"));
    let r = c
        .request_with_cookie(Method::GET, "/login", "mamori_lang=en")
        .await;
    assert!(r.text().contains("Log in"), "{}", r.text());
    assert!(r.text().contains("lang=\"en\""));
    let r = c
        .request_with_cookie(Method::GET, "/api/v1/me", "mamori_lang=en")
        .await;
    assert_eq!(r.json()["detail"], "Please log in.");
}

both_engines!(english_switch, english_is_available);
