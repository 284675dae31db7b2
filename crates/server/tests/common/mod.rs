//! The integration harness: the whole application on a fresh database per
//! test, on SQLite always and on PostgreSQL when MAMORI_TEST_POSTGRES_URL is
//! set (each test gets its own database there).

#![allow(dead_code)]

pub mod smtp;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use mamori_server::{AppState, Config};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use tower::ServiceExt;

pub const PG_ENV: &str = "MAMORI_TEST_POSTGRES_URL";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    pub dir: tempfile::TempDir,
    /// login → password from the demo accounts file.
    pub passwords: HashMap<String, String>,
    /// role label (e.g. "security_manager") → a login holding it.
    pub logins: Vec<(String, String, String)>,
    pg: Option<(String, String)>,
}

/// Runs `f` on a fresh app, or says why it skipped.
pub async fn app(engine: Engine) -> Option<TestApp> {
    app_with(engine, |_| {}).await
}

/// A fresh app whose configuration `configure` adjusts first.
pub async fn app_with(engine: Engine, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.data_dir = dir.path().to_path_buf();
    config.insecure_fast_hashing = true;
    config.cookie_secure = false;
    configure(&mut config);
    let mut pg = None;
    match engine {
        Engine::Sqlite => {}
        Engine::Postgres => {
            let Ok(base) = std::env::var(PG_ENV) else {
                eprintln!("SKIPPED (PostgreSQL): set {PG_ENV}=postgres://user@host:port/db to run the PostgreSQL half");
                return None;
            };
            let name = format!("mamori_t_{}", mamori_server::auth::token::random_hex(6));
            sqlx::any::install_default_drivers();
            let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            let url = match base.rfind('/') {
                Some(i)
                    if base[..i].contains("://")
                        && base[i..].len() > 1
                        && !base[..i].ends_with('/') =>
                {
                    format!("{}/{name}", &base[..i])
                }
                _ => format!("{}/{name}", base.trim_end_matches('/')),
            };
            config.database_url = url;
            pg = Some((base, name));
        }
    }
    let state = AppState::open(config).await.expect("open app");
    let path = mamori_server::demo::load_if_empty(&state)
        .await
        .expect("demo")
        .expect("fresh database");
    let text = std::fs::read_to_string(path).expect("demo accounts");
    let mut passwords = HashMap::new();
    let mut logins = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let cols: Vec<&str> = line.split('\t').collect();
        passwords.insert(cols[0].to_string(), cols[1].to_string());
        logins.push((
            cols[0].to_string(),
            cols[3].to_string(),
            cols[5].to_string(),
        ));
    }
    let router = mamori_server::app::router(state.clone());
    Some(TestApp {
        state,
        router,
        dir,
        passwords,
        logins,
        pg,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            // Best effort: drop the test database on a separate runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut c = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
                        .await
                        .ok()?;
                    sqlx::Executor::execute(
                        &mut c,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

/// A login holding `role_ja` (the Japanese title) in the demo ward.
pub fn login_with_role(app: &TestApp, role_ja: &str) -> String {
    app.logins
        .iter()
        .find(|(_, _, roles)| roles.split('・').any(|r| r == role_ja))
        .map(|(l, _, _)| l.clone())
        .unwrap_or_else(|| panic!("no demo person with role {role_ja}"))
}

/// The security manager of a unit (by its name).
pub fn manager_of(app: &TestApp, unit: &str) -> String {
    app.logins
        .iter()
        .find(|(_, u, roles)| u == unit && roles.split('・').any(|r| r == "セキュリティ管理者"))
        .map(|(l, _, _)| l.clone())
        .unwrap_or_else(|| panic!("no manager in {unit}"))
}

/// A demo login with no role beyond 職員等, in the given unit name.
pub fn plain_staff(app: &TestApp, unit: &str) -> String {
    app.logins
        .iter()
        .find(|(_, u, roles)| roles.is_empty() && u == unit)
        .map(|(l, _, _)| l.clone())
        .unwrap_or_else(|| panic!("no plain staff in {unit}"))
}

pub struct Response {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// Collects a router response.
    pub async fn read(res: axum::response::Response) -> Response {
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn content_type(&self) -> String {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

/// A browser-like client: keeps the session cookie, sends a source address.
#[derive(Clone)]
pub struct Client {
    router: Router,
    state: AppState,
    pub cookie: Option<String>,
    pub ip: SocketAddr,
}

impl TestApp {
    pub fn client(&self) -> Client {
        Client {
            router: self.router.clone(),
            state: self.state.clone(),
            cookie: None,
            ip: "10.0.0.1:50000".parse().unwrap(),
        }
    }

    /// A client logged in through the API as `login` with its demo password.
    pub async fn logged_in(&self, login: &str) -> Client {
        let mut c = self.client();
        let pw = self.passwords[login].clone();
        let r = c
            .post_json(
                "/api/v1/session",
                &serde_json::json!({ "login": login, "password": pw }),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {login}: {}", r.text());
        c
    }
}

impl Client {
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Response {
        match content_type {
            Some(ct) => self.send(method, path, &[("content-type", ct)], body).await,
            None => self.send(method, path, &[], body).await,
        }
    }

    /// A request with an extra cookie (e.g. the language switch).
    pub async fn request_with_cookie(
        &mut self,
        method: Method,
        path: &str,
        cookie: &str,
    ) -> Response {
        self.send(method, path, &[("cookie", cookie)], vec![]).await
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.request(Method::GET, path, None, vec![]).await
    }
    pub async fn delete(&mut self, path: &str) -> Response {
        self.request(Method::DELETE, path, None, vec![]).await
    }
    pub async fn post_json(&mut self, path: &str, body: &Value) -> Response {
        self.request(
            Method::POST,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }
    pub async fn put_json(&mut self, path: &str, body: &Value) -> Response {
        self.request(
            Method::PUT,
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// The session's CSRF token, as a page's hidden field would carry it.
    pub async fn csrf(&self) -> String {
        let Some(c) = &self.cookie else {
            return String::new();
        };
        let digest = mamori_server::auth::token::digest(c);
        let mut conn = self.state.db().pool().acquire().await.unwrap();
        let row: (String,) = sqlx::query_as("SELECT csrf FROM sessions WHERE id_hash = $1")
            .bind(digest)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        row.0
    }

    /// A urlencoded form body with the session's CSRF token added.
    async fn form_body(&self, fields: &[(&str, &str)]) -> String {
        let csrf = self.csrf().await;
        let mut pairs: Vec<(&str, &str)> = fields.to_vec();
        pairs.push(("csrf", &csrf));
        serde_urlencoded::to_string(&pairs).unwrap()
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let body = self.form_body(fields).await;
        self.request(
            Method::POST,
            path,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
        )
        .await
    }
}

/// Declares a test that runs on both engines.
#[macro_export]
macro_rules! both_engines {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = common::app(common::Engine::Sqlite).await {
                    ($body)(app).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = common::app(common::Engine::Postgres).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

/// Counts records with this action.
pub async fn records_with(app: &TestApp, action: &str) -> i64 {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM records WHERE action = $1")
        .bind(action)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    row.0
}

impl Client {
    /// A request with extra headers. An extra `cookie` header (e.g.
    /// `mamori_lang=en`) is sent along with the session cookie, and a new
    /// session cookie is kept, as `request` does.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let mut req = Request::builder().method(method).uri(path);
        let mut cookies = Vec::new();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("cookie") {
                cookies.push(value.to_string());
            } else {
                req = req.header(*name, *value);
            }
        }
        if let Some(c) = &self.cookie {
            cookies.push(format!("mamori_session={c}"));
        }
        if !cookies.is_empty() {
            req = req.header(header::COOKIE, cookies.join("; "));
        }
        let mut req = req.body(Body::from(body)).expect("request");
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router never fails");
        for v in res.headers().get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap_or("");
            if let Some(rest) = v.strip_prefix("mamori_session=") {
                let val = rest.split(';').next().unwrap_or("");
                self.cookie = if val.is_empty() {
                    None
                } else {
                    Some(val.to_string())
                };
            }
        }
        Response::read(res).await
    }

    /// Posts a form with the session's CSRF token and an extra cookie
    /// (e.g. `mamori_lang=en`).
    pub async fn post_form_with_cookie(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        cookie: &str,
    ) -> Response {
        let body = self.form_body(fields).await;
        self.send(
            Method::POST,
            path,
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", cookie),
            ],
            body.into_bytes(),
        )
        .await
    }
}

/// The single integer a query returns, e.g. `SELECT COUNT(*) FROM persons`
/// (to check what a request wrote, or did not write).
pub async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let mut conn = app.state.db().pool().acquire().await.unwrap();
    let row: (i64,) = sqlx::query_as(sql)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.0
}

/// A request from a ward system with a bearer token (and a JSON body).
pub async fn bearer(
    app: &TestApp,
    method: Method,
    path: &str,
    tok: &str,
    body: Option<Value>,
) -> Response {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {tok}"));
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
        .expect("request");
    let res = app
        .router
        .clone()
        .oneshot(req)
        .await
        .expect("router never fails");
    Response::read(res).await
}

/// A multipart body with the session's CSRF token first.
pub async fn multipart(
    c: &Client,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> (String, Vec<u8>) {
    let boundary = "----mamori-test-boundary";
    let mut body = Vec::new();
    let mut part = |name: &str, file: Option<&str>, bytes: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    };
    let csrf = c.csrf().await;
    part("csrf", None, csrf.as_bytes());
    for (k, v) in fields {
        part(k, None, v.as_bytes());
    }
    for (name, file, bytes) in files {
        part(name, Some(file), bytes);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
