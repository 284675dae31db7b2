//! End-to-end tests in Debian's Chromium, driven through chromedriver
//! (WebDriver, `fantoccini`), against the real server on a random loopback
//! port. Cards are Chromium's virtual authenticator (CTAP2, internal
//! transport, resident keys, user verification: card + PIN).
//!
//! Without /usr/bin/chromium and /usr/bin/chromedriver the test says
//! SKIPPED, unless MAMORI_E2E_REQUIRED=1 (CI sets it), when it fails.
//! Screenshots of the main pages go to `<target>/e2e-screenshots`
//! (MAMORI_E2E_SCREENSHOTS overrides); the test prints the folder.
//! Time never comes from the wall clock: the idle lock is reached by
//! moving the server's clock.

mod common;

use common::{manager_of, plain_staff};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, ended when the test ends (also on a failed assertion).
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The WebDriver WebAuthn extension (W3C WebAuthn §11): add a virtual
/// authenticator, or set its user-verification answer.
#[derive(Debug)]
struct WebAuthnCmd {
    path: String,
    body: Value,
}

impl WebDriverCompatibleCommand for WebAuthnCmd {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or(""),
            self.path
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(self.body.to_string()))
    }
}

/// A browser (its own profile, so its own cookies) with a virtual card.
struct Browser {
    client: Client,
    authenticator: String,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(driver_url: &str, base: &str, shots: &Path) -> Browser {
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1000", "--lang=ja", "--no-first-run"],
            }),
        );
        let mut client = None;
        // chromedriver needs a moment to listen; bounded retries.
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(driver_url)
                .await
            {
                Ok(c) => {
                    client = Some(c);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let client = client.expect("a Chromium session through chromedriver");
        let added = client
            .issue_cmd(WebAuthnCmd {
                path: "authenticator".into(),
                body: json!({
                    "protocol": "ctap2", "transport": "usb", "hasResidentKey": true,
                    "hasUserVerification": true, "isUserConsenting": true, "isUserVerified": true,
                }),
            })
            .await
            .expect("virtual authenticator");
        let authenticator = added
            .as_str()
            .map(String::from)
            .or_else(|| added["authenticatorId"].as_str().map(String::from))
            .expect("authenticator id");
        Browser {
            client,
            authenticator,
            base: base.into(),
            shots: shots.into(),
        }
    }

    /// Whether the card's PIN check succeeds (user verification).
    async fn pin_ok(&self, ok: bool) {
        self.client
            .issue_cmd(WebAuthnCmd {
                path: format!("authenticator/{}/uv", self.authenticator),
                body: json!({ "isUserVerified": ok }),
            })
            .await
            .expect("set user verification");
    }

    async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("element {css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Waits (bounded) until the page is `path` (with its query).
    async fn wait_path(&self, path: &str) {
        for _ in 0..300 {
            if self.path().await == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.shot("failed").await;
        panic!(
            "expected {path}, still at {}: {}",
            self.path().await,
            self.body().await
        );
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    async fn body(&self) -> String {
        self.text("body").await
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn login(&self, login: &str, password: &str) {
        self.go("/login").await;
        self.fill("#login", login).await;
        self.fill("#password", password).await;
        self.click("#login-submit").await;
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("MAMORI_E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
            target.join("e2e-screenshots")
        });
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Whether the browser is here; SKIPPED or a failure (in CI) if not.
fn chromium_present() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if std::env::var("MAMORI_E2E_REQUIRED").as_deref() == Ok("1") {
        panic!("MAMORI_E2E_REQUIRED=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
    }
    eprintln!("SKIPPED (e2e): {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_cards_login_lost_card_and_idle_lock_in_chromium() {
    if !chromium_present() {
        return;
    }
    let shots = screenshots_dir();
    println!("e2e screenshots: {}", shots.display());

    // The server, on a random loopback port; WebAuthn needs the origin the
    // browser sees (localhost: a secure context without TLS).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let base = format!("http://localhost:{port}");
    let app = common::app_with(common::Engine::Sqlite, |c| {
        c.cards.rp_id = "localhost".into();
        c.cards.origin = base.clone();
        c.cookie_secure = true;
    })
    .await
    .expect("app");
    let router = mamori_server::app::router(app.state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    let driver_port = free_port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    let a = Browser::open(&driver_url, &base, &shots).await;
    let b = Browser::open(&driver_url, &base, &shots).await;

    // 1. Password login with a one-time password, and the forced change.
    let staff = plain_staff(&app, "企画課");
    let account = {
        let mut conn = app.state.db().pool().acquire().await.unwrap();
        mamori_server::identity::store::by_login(&mut conn, &staff)
            .await
            .unwrap()
            .unwrap()
            .id
    };
    let otp = mamori_server::identity::service::reset_password(
        &app.state,
        mamori_server::records::Who::Cli,
        "",
        account,
    )
    .await
    .expect("one-time password");
    a.go("/login").await;
    a.shot("01-login").await;
    a.login(&staff, &otp).await;
    a.wait_path("/password").await;
    a.shot("02-forced-password-change").await;
    let new_password = format!(
        "Edogawa-{}-Mamori!",
        mamori_server::auth::token::random_hex(4)
    );
    a.fill("#current_password", &otp).await;
    a.fill("#new_password", &new_password).await;
    a.fill("#confirm_password", &new_password).await;
    a.click("form[action='/password'] button[type=submit]")
        .await;
    a.find("#password-done").await;
    a.go("/").await;
    a.wait_path("/").await;
    a.shot("03-home").await;

    // 2. Register a card from my page (the login was just now: no re-auth).
    a.go("/me/cards").await;
    a.fill("#label", "KC-E2E-0001").await;
    a.click("#register-card").await;
    a.wait_path("/me/cards?notice=registered").await;
    let table = a.text("#my-cards").await;
    assert!(table.contains("KC-E2E-0001"), "{table}");
    assert!(table.contains("利用中"), "{table}");
    // Direct attestation keeps the model (the browser blanks it with `none`).
    assert!(
        !table.contains("00000000-0000-0000-0000-000000000000"),
        "{table}"
    );
    a.shot("04-card-registered").await;

    // 3. Log out; log in with card + PIN.
    a.click("header form[action='/logout'] button").await;
    a.wait_path("/login").await;
    a.click("#card-login-link").await;
    a.wait_path("/login/card").await;
    a.fill("#login", &staff).await;
    a.shot("05-card-login").await;
    a.click("#card-submit").await;
    a.wait_path("/").await;
    a.go("/me").await;
    assert!(a.body().await.contains(&staff));

    // A wrong PIN (user verification fails) opens nothing.
    let c = Browser::open(&driver_url, &base, &shots).await;
    c.pin_ok(false).await;
    c.go("/login/card").await;
    c.fill("#login", &staff).await;
    c.click("#card-submit").await;
    let err = c.find(".card-error:not([hidden])").await;
    assert!(!err.text().await.unwrap().is_empty());
    assert!(c.path().await.starts_with("/login/card"));

    // 4. In another browser, the holder reports the card lost with the
    //    password; the card's live session in the first browser ends.
    b.login(&staff, &new_password).await;
    b.wait_path("/").await;
    b.go("/me/cards").await;
    b.fill("input[name=note]", "庁舎外で紛失").await;
    b.click("button[id^=lost-]").await;
    b.wait_path("/me/cards?notice=lost").await;
    assert!(b.text("#my-cards").await.contains("失効"));
    b.shot("06-card-reported-lost").await;
    a.go("/me").await;
    a.wait_path("/login").await;
    let notice = a.body().await;
    assert!(notice.contains("紛失"), "{notice}");
    a.shot("07-session-ended-by-lost-card").await;
    // The revoked card no longer logs in.
    a.go("/login/card").await;
    a.fill("#login", &staff).await;
    a.click("#card-submit").await;
    let err = a.find(".card-error:not([hidden])").await;
    assert!(err.text().await.unwrap().contains("ICカード"));

    // The security manager sees the loss report.
    let manager = manager_of(&app, "企画課");
    let mb = Browser::open(&driver_url, &base, &shots).await;
    mb.login(&manager, &app.passwords[&manager]).await;
    mb.wait_path("/").await;
    mb.go("/cards").await;
    let reports = mb.text("#loss-reports").await;
    assert!(reports.contains("庁舎外で紛失"), "{reports}");
    mb.shot("08-manager-cards").await;

    // An administrator with a card logs in with password and card: the
    // password opens only the card step.
    mb.go("/me/cards").await;
    mb.fill("#label", "KC-E2E-MGR").await;
    mb.click("#register-card").await;
    mb.wait_path("/me/cards?notice=registered").await;
    mb.click("header form[action='/logout'] button").await;
    mb.wait_path("/login").await;
    mb.login(&manager, &app.passwords[&manager]).await;
    mb.wait_path("/login/card").await;
    mb.shot("10-card-step-after-password").await;
    mb.click("#card-submit").await;
    mb.wait_path("/").await;

    // 5. Idle lock: the server's clock moves past the idle time; the page
    //    asks for the password (or the card), and the session goes on after it.
    app.state.clock().advance(16 * 60);
    b.go("/me").await;
    b.wait_path("/lock").await;
    b.shot("09-lock-screen").await;
    b.fill("#password", "wrong-password").await;
    b.click("#unlock-submit").await;
    b.find("#lock-error").await;
    b.fill("#password", &new_password).await;
    b.click("#unlock-submit").await;
    b.wait_path("/").await;
    b.go("/me").await;
    b.wait_path("/me").await;
    // A session the card opened unlocks only with the card and its PIN.
    mb.go("/cards").await;
    mb.wait_path("/lock").await;
    mb.shot("11-lock-screen-card").await;
    mb.click("#card-submit").await;
    mb.wait_path("/").await;
    mb.go("/cards").await;
    mb.wait_path("/cards").await;

    for browser in [a, b, c, mb] {
        let _ = browser.client.close().await;
    }
    server.abort();
}

impl Browser {
    /// Waits (bounded) until the page's path and query start with `prefix`.
    async fn wait_prefix(&self, prefix: &str) -> String {
        for _ in 0..300 {
            let p = self.path().await;
            if p.starts_with(prefix) {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = self.shot("failed-prefix").await;
        panic!(
            "expected {prefix}…, still at {}: {}",
            self.path().await,
            self.body().await
        );
    }
}

/// K10 in the browser: a member of staff reports, their セキュリティ管理者
/// forwards, the セキュリティ統括者 reports to the 最高情報統括責任者, who
/// sees it; and a member of staff asks for access to a secret asset, which
/// its manager approves (K3.2.1). Screenshots of each page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_incident_chain_and_access_request_in_chromium() {
    if !chromium_present() {
        return;
    }
    let shots = screenshots_dir();
    println!("e2e screenshots: {}", shots.display());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let base = format!("http://localhost:{port}");
    let app = common::app_with(common::Engine::Sqlite, |c| {
        c.cards.rp_id = "localhost".into();
        c.cards.origin = base.clone();
        c.cookie_secure = true;
    })
    .await
    .expect("app");
    let router = mamori_server::app::router(app.state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let driver_port = free_port();
    let _driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let driver_url = format!("http://127.0.0.1:{driver_port}");
    let staff = plain_staff(&app, "戸籍住民課");
    let manager = manager_of(&app, "戸籍住民課");
    let director = common::login_with_role(&app, "セキュリティ統括者");
    let cio = common::login_with_role(&app, "最高情報統括責任者");

    // 1. Staff report (K10.1).
    let s = Browser::open(&driver_url, &base, &shots).await;
    s.login(&staff, &app.passwords[&staff]).await;
    s.wait_path("/").await;
    s.go("/incidents/new").await;
    s.find("#r-kind")
        .await
        .select_by_value("accident")
        .await
        .expect("kind");
    s.fill("#r-title", "窓口端末の画面に見知らぬ警告表示").await;
    s.fill(
        "#r-description",
        "住民票交付窓口の端末に、ファイルを暗号化したという英語の警告が表示された。端末はLANケーブルを抜いて隔離した。",
    )
    .await;
    let noticed = app.state.clock().now() - time::Duration::hours(1);
    let noticed = noticed.to_offset(mamori_server::clock::JST);
    let noticed = format!(
        "{} {:02}:{:02}",
        mamori_server::clock::date_str(noticed.date()),
        noticed.hour(),
        noticed.minute()
    );
    s.fill("#r-noticed_at", &noticed).await;
    s.shot("20-incident-report-form").await;
    s.click("form[action='/incidents/new'] button[type=submit]")
        .await;
    let at = s.wait_prefix("/incidents/").await;
    let id: i64 = at
        .trim_start_matches("/incidents/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("incident id in {at}"));
    s.shot("21-incident-reported").await;

    // 2. The manager forwards it to the セキュリティ統括者 (K10.2).
    let m = Browser::open(&driver_url, &base, &shots).await;
    m.login(&manager, &app.passwords[&manager]).await;
    m.wait_path("/").await;
    m.go(&format!("/incidents/{id}")).await;
    m.shot("22-incident-manager").await;
    m.click("button[name=action][value=forward]").await;
    m.wait_prefix(&format!("/incidents/{id}?done=")).await;

    // 3. The 統括者 reports to the 最高情報統括責任者 (K10.3).
    let d = Browser::open(&driver_url, &base, &shots).await;
    d.login(&director, &app.passwords[&director]).await;
    d.wait_path("/").await;
    d.go(&format!("/incidents/{id}")).await;
    d.click("button[name=action][value=report]").await;
    d.wait_prefix(&format!("/incidents/{id}?done=")).await;
    d.shot("23-incident-director").await;

    // 4. The CIO sees it, with the chain walked.
    let c = Browser::open(&driver_url, &base, &shots).await;
    c.login(&cio, &app.passwords[&cio]).await;
    c.wait_path("/").await;
    c.go(&format!("/incidents/{id}")).await;
    c.find("#step-3").await;
    let body = c.body().await;
    assert!(body.contains("窓口端末の画面に見知らぬ警告表示"), "{body}");
    c.shot("24-incident-cio").await;
    let done = common::scalar(
        &app,
        &format!(
            "SELECT COUNT(*) FROM incident_steps WHERE incident_id = {id} AND seq <= 2 AND completed_at IS NOT NULL"
        ),
    )
    .await;
    assert_eq!(done, 2, "the manager's and the director's steps are done");
    assert_eq!(
        common::scalar(
            &app,
            &format!("SELECT COUNT(*) FROM incident_steps WHERE incident_id = {id} AND seq = 3")
        )
        .await,
        1,
        "the report reached the CIO"
    );

    // 5. Access to a secret asset: staff ask, the manager approves (K3.2.1).
    let juki = common::scalar(&app, "SELECT id FROM assets WHERE code = 'juki'").await;
    s.go("/assets").await;
    s.shot("25-asset-register").await;
    s.go(&format!("/assets/{juki}")).await;
    s.fill("#request-purpose", "住民票の写しの交付").await;
    s.fill("#request-conditions\\.windows\\[0\\]\\.start", "08:30")
        .await;
    s.fill("#request-conditions\\.windows\\[0\\]\\.end", "17:15")
        .await;
    s.shot("26-asset-request").await;
    s.click("form[action$='/requests'] button[type=submit]")
        .await;
    s.wait_path(&format!("/assets/{juki}?done=requested")).await;
    m.go("/access").await;
    m.shot("27-access-to-decide").await;
    m.go(&format!("/assets/{juki}")).await;
    let request = common::scalar(&app, "SELECT MAX(id) FROM access_requests").await;
    m.click(&format!(
        "form[action='/access-requests/{request}/decision'] button[value=approve]"
    ))
    .await;
    m.wait_path(&format!("/assets/{juki}?done=decided")).await;
    m.shot("28-asset-approved").await;
    s.go("/access").await;
    let mine = s.body().await;
    assert!(mine.contains("住民基本台帳システム"), "{mine}");
    s.shot("29-my-access").await;

    for browser in [s, m, d, c] {
        let _ = browser.client.close().await;
    }
    server.abort();
}
