//! Application state, router assembly and background tasks.

use crate::auth::hasher::Hasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::web;
use axum::handler::Handler;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    db: Db,
    config: Config,
    clock: Clock,
    hasher: Hasher,
    fingerprint_key: Vec<u8>,
    ledger: crate::ledger::Ledger,
    access: crate::assets::engine::AccessModel,
    decisions: Option<crate::assets::decisions::DecisionLog>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("ledger: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("access engine: {0}")]
    Access(#[from] crate::assets::engine::EngineError),
    #[error("{0}")]
    Other(String),
}

/// Reads the password-fingerprint key (SPEC §3.3), creating it with mode
/// 0600 on first start. It lives outside the database so a stolen database
/// alone does not give it away; several servers sharing one PostgreSQL
/// must share this file.
fn fingerprint_key(data_dir: &Path) -> Result<Vec<u8>, std::io::Error> {
    let dir = data_dir.join("secrets");
    let path = dir.join("password-fingerprint.key");
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 32 => return Ok(k),
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than 32 bytes",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(&dir)?;
    let key: [u8; 32] = rand::random();
    write_private(&path, &key)?;
    Ok(key.to_vec())
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl AppState {
    /// Opens the data folder and the database, applying migrations, as the
    /// server: the one process that writes the ledger.
    pub async fn open(config: Config) -> Result<AppState, StartError> {
        Self::open_as(config, true).await
    }

    /// Opens for a command beside the server: the ledger is read-only and
    /// records wait in the outbox until the server moves them.
    pub async fn open_cli(config: Config) -> Result<AppState, StartError> {
        Self::open_as(config, false).await
    }

    async fn open_as(config: Config, writer: bool) -> Result<AppState, StartError> {
        let dd = |source| StartError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&config.data_dir).map_err(dd)?;
        let key = fingerprint_key(&config.data_dir).map_err(dd)?;
        let db = Db::connect(&config.database_url()).await?;
        let ledger = crate::ledger::Ledger::open(
            db.clone(),
            &config.data_dir,
            &config.ledger.origin,
            config.ledger.store,
            config.ledger.signing_key.as_deref(),
            writer,
        )
        .await?;
        let hasher = Hasher::new(config.hash_workers, config.insecure_fast_hashing);
        let clock = Clock::default();
        let access = crate::assets::engine::AccessModel::load(&db, clock.unix()).await?;
        let decisions =
            writer.then(|| crate::assets::decisions::DecisionLog::start(ledger.clone()));
        Ok(AppState(Arc::new(Inner {
            db,
            config,
            clock,
            hasher,
            fingerprint_key: key,
            ledger,
            access,
            decisions,
        })))
    }

    pub fn db(&self) -> &Db {
        &self.0.db
    }
    pub fn config(&self) -> &Config {
        &self.0.config
    }
    pub fn clock(&self) -> &Clock {
        &self.0.clock
    }
    pub fn hasher(&self) -> &Hasher {
        &self.0.hasher
    }
    pub fn fingerprint_key(&self) -> &[u8] {
        &self.0.fingerprint_key
    }
    pub fn ledger(&self) -> &crate::ledger::Ledger {
        &self.0.ledger
    }
    /// The access-decision engine (SPEC §3.4).
    pub fn access(&self) -> &crate::assets::engine::AccessModel {
        &self.0.access
    }
    /// The queue of decision records (the server only).
    pub fn decisions(&self) -> Option<&crate::assets::decisions::DecisionLog> {
        self.0.decisions.as_ref()
    }
}

/// One route as registered: the permission-matrix test walks this list,
/// so a route cannot be added without appearing there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
}

/// A router that remembers what it was given.
pub struct Routes {
    router: Router<AppState>,
    table: Vec<RouteInfo>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        mr: MethodRouter<AppState>,
    ) -> Routes {
        self.router = self.router.route(path, mr);
        self.table.push(RouteInfo { method, path });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("GET", path, get(h))
    }
    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("POST", path, post(h))
    }
    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("PUT", path, put(h))
    }
    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, h: H) -> Routes {
        self.add("DELETE", path, delete(h))
    }
}

fn all_routes() -> Routes {
    let r = Routes::new()
        .get("/healthz", healthz)
        .get("/api/v1/openapi.json", crate::openapi::serve);
    let r = web::pages::routes(r);
    let r = crate::identity::api::routes(r);
    let r = crate::identity::pages::routes(r);
    let r = crate::org::api::routes(r);
    let r = crate::org::pages::routes(r);
    let r = crate::people::api::routes(r);
    let r = crate::people::pages::routes(r);
    let r = crate::ledger::api::routes(r);
    let r = crate::ledger::search_api::routes(r);
    let r = crate::ledger::search_pages::routes(r);
    let r = crate::ledger::bundle::routes(r);
    let r = crate::assets::api::routes(r);
    let r = crate::assets::pages::routes(r);
    let r = crate::cards::api::routes(r);
    let r = crate::cards::pages::routes(r);
    let r = crate::incidents::api::routes(r);
    let r = crate::incidents::pages::routes(r);
    let r = crate::audits::api::routes(r);
    let r = crate::audits::pages::routes(r);
    let r = crate::reports::api::routes(r);
    let r = crate::reports::pages::routes(r);
    let r = crate::inspections::api::routes(r);
    let r = crate::inspections::pages::routes(r);
    let r = crate::compliance::api::routes(r);
    let r = crate::compliance::pages::routes(r);
    let r = crate::training::api::routes(r);
    let r = crate::training::pages::routes(r);
    let r = crate::catalog::api::routes(r);
    let r = crate::catalog::pages::routes(r);
    crate::records::routes::routes(r)
}

/// Every route the application serves.
pub fn route_table() -> Vec<RouteInfo> {
    all_routes().table
}

/// The whole application as a router.
pub fn router(state: AppState) -> Router {
    let routes = all_routes();
    let router = routes.router.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        sync_access_after_write,
    ));
    web::layers(router).with_state(state)
}

/// After any request that may have changed something, the decision engine
/// takes in what changed (one indexed read when nothing did), so every
/// change reaches it the moment its request answers, whichever module made
/// it. The two hot write paths, decisions and ledger ingest, change nothing
/// the engine reads and are skipped.
async fn sync_access_after_write(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let write = req.method() != axum::http::Method::GET && req.method() != axum::http::Method::HEAD;
    let path = req.uri().path();
    let hot = path.starts_with("/api/v1/access/check") || path == "/api/v1/ledger/records";
    let res = next.run(req).await;
    if write && !hot {
        crate::assets::service::after_commit(&state).await;
    }
    res
}

async fn healthz() -> &'static str {
    "ok"
}

/// Applies due personnel events now and then every minute (K17.3:
/// promptly), and runs the compliance checks when
/// `compliance.check_interval_minutes` has passed since the last run;
/// escalates overdue incident steps (K10), sends the mail
/// outbox and marks lapsed grants ended every 15 seconds; keeps the
/// decision engine current with changes other processes made (the `mamori`
/// command line, other servers on the same PostgreSQL) every
/// `access_sync_ms`.
pub fn spawn_background(state: AppState) -> tokio::task::JoinHandle<()> {
    let sync_state = state.clone();
    let sync = tokio::spawn(async move {
        let period = Duration::from_millis(sync_state.config().access_sync_ms.max(50));
        let mut tick = tokio::time::interval(period);
        let mut rounds: u64 = 0;
        loop {
            tick.tick().await;
            crate::assets::service::after_commit(&sync_state).await;
            rounds += 1;
            if rounds % 3600 == 0 {
                if let Ok(mut conn) = sync_state.db().pool().acquire().await {
                    let _ = crate::assets::store::trim_changes(&mut conn, 100_000).await;
                }
            }
        }
    });
    tokio::spawn(async move {
        let _sync = AbortOnDrop(sync);
        let mut minute = tokio::time::interval(Duration::from_secs(60));
        let mut quarter = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = minute.tick() => {
                    match crate::people::service::apply_due(&state).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(applied = n, "personnel events applied"),
                        Err(e) => tracing::error!(error = %e, "applying personnel events failed"),
                    }
                    match crate::compliance::run_if_due(&state).await {
                        Ok(Some(run)) => tracing::info!(run, "compliance checks ran"),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "running the compliance checks failed"),
                    }
                }
                _ = quarter.tick() => {
                    let now = state.clock().unix();
                    match crate::incidents::service::escalate_overdue(&state, now).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(escalated = n, "overdue incident steps escalated"),
                        Err(e) => tracing::error!(error = %e, "escalating incident steps failed"),
                    }
                    if let Err(e) = crate::mail::send_due(&state, now).await {
                        tracing::error!(error = %e, "sending mail failed");
                    }
                }
            }
            crate::assets::service::after_commit(&state).await;
            match crate::assets::service::end_lapsed(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(ended = n, "lapsed access grants ended"),
                Err(e) => tracing::error!(error = %e, "ending lapsed grants failed"),
            }
        }
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves until SIGINT or SIGTERM, then finishes in-flight requests.
pub async fn serve(state: AppState, on_ready: impl FnOnce(SocketAddr)) -> Result<(), StartError> {
    if state.config().insecure_fast_hashing {
        return Err(StartError::Other(
            "insecure_fast_hashing is for tests only".into(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(&state.config().listen)
        .await
        .map_err(|e| {
            StartError::Other(format!("cannot listen on {}: {e}", state.config().listen))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let background = spawn_background(state.clone());
    let watcher = tokio::spawn(state.ledger().clone().watch_every(
        Duration::from_secs(state.config().ledger.checkpoint_secs.max(1)),
        Duration::from_secs(state.config().ledger.verify_secs.max(10)),
        Duration::from_secs(state.config().ledger.prune_secs.max(60)),
        state.clock().clone(),
    ));
    let app = router(state.clone());
    on_ready(addr);
    tracing::info!(%addr, "mamori is listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| StartError::Other(e.to_string()))?;
    background.abort();
    watcher.abort();
    state.db().close().await;
    tracing::info!("mamori stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
