//! `mamori`: the one binary. Thin glue over `mamori_server`.

use clap::{Parser, Subcommand};
use mamori_server::records::Who;
use mamori_server::{AppState, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mamori",
    version,
    about = "Mamori (守り): the Edogawa ward's information security policy, running"
)]
struct Cli {
    /// Settings file (TOML). MAMORI_* environment variables override it.
    #[arg(long, global = true, env = "MAMORI_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder (embedded database, keys, secrets). Default ./mamori-data.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// Database URL: sqlite://… (default: <data>/mamori.db) or postgres://…
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web UI and the API.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// Load the demo ward into an empty database and print its accounts.
        #[arg(long)]
        demo: bool,
        /// Send cookies without the Secure flag. Only for plain HTTP on a
        /// host other than localhost, never in production.
        #[arg(long)]
        insecure_cookies: bool,
    },
    /// Import data.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Account administration.
    User {
        #[command(subcommand)]
        what: UserCommand,
    },
    /// Bearer tokens of ward systems.
    Token {
        #[command(subcommand)]
        what: TokenCommand,
    },
    /// The access-record ledger.
    Ledger {
        #[command(subcommand)]
        what: LedgerCommand,
    },
    /// The compiled inspection and audit report (K32.3–4).
    Report {
        #[command(subcommand)]
        what: ReportCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Write the report as of today: PDF for a `.pdf` file, else JSON.
    Export {
        /// The file to write (`report.pdf` or `report.json`).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token for a registered system; it is printed once.
    Create {
        /// The system's code (e.g. `facility`, `library`).
        #[arg(long)]
        system: String,
        /// ledger:write, ledger:read or access:check (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// Revoke a token by its id (from `mamori token list`).
    Revoke { id: i64 },
    /// List tokens (never the tokens themselves).
    List,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Recompute the whole tree from the stored records; exit 0 when intact,
    /// 1 with the first record that does not match.
    Verify,
    /// Replace the checkpoint signing key (K16.2.2) with the server stopped.
    /// The log as it stands is signed by both keys (the handover), the old
    /// key file is kept as `<file>.retired-<key id>`, and every earlier
    /// checkpoint stays verifiable with the key of its time
    /// (`GET /api/v1/ledger/keys`). Prints the new verifier key.
    RotateKey,
    /// Check an evidence bundle offline (no database, no server): the
    /// checkpoint's signature and every record's inclusion proof. Exit 0
    /// when it verifies, 1 naming the first bad record, 2 when the file is
    /// not a bundle.
    VerifyBundle {
        file: PathBuf,
        /// A verifier key you trust (`<name>+<hex id>+<base64>`, from
        /// `GET /api/v1/ledger/key`); without it the key in the file is used,
        /// which shows the file is intact but not who signed it.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Personnel events from the HR system's CSV (UTF-8 or Shift_JIS).
    Personnel {
        file: PathBuf,
        /// Apply the valid rows even if some rows have errors.
        #[arg(long)]
        apply_valid: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Print a one-time password that must be changed at first login.
    ResetPassword { login: String },
}

fn config(cli: &Cli) -> Result<Config, String> {
    let mut c = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(d) = &cli.data {
        c.data_dir = d.clone();
    }
    if let Some(u) = &cli.database {
        c.database_url = u.clone();
    }
    Ok(c)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAMORI_LOG")
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mamori: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    // Offline: reads the file only, before any settings or database.
    if let Command::Ledger {
        what: LedgerCommand::VerifyBundle { file, key },
    } = &cli.command
    {
        return Ok(verify_bundle(file, key.as_deref()));
    }
    let mut cfg = config(&cli)?;
    match cli.command {
        Command::Serve {
            listen,
            demo,
            insecure_cookies,
        } => {
            if let Some(l) = listen {
                cfg.listen = l;
            }
            cfg.demo |= demo;
            if insecure_cookies {
                cfg.cookie_secure = false;
            }
            let state = AppState::open(cfg).await.map_err(|e| e.to_string())?;
            if state.config().demo {
                if let Some(path) = mamori_server::demo::load_if_empty(&state)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                    println!(
                        "Demo ward loaded. Accounts (shown once; also in {}):\n{text}",
                        path.display()
                    );
                }
            }
            let applied = mamori_server::people::service::apply_due(&state)
                .await
                .map_err(|e| e.to_string())?;
            if applied > 0 {
                tracing::info!(applied, "personnel events applied at start");
            }
            mamori_server::app::serve(state, |addr| println!("mamori: listening on http://{addr}"))
                .await
                .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            what: ImportCommand::Personnel { file, apply_valid },
        } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let state = AppState::open_cli(cfg).await.map_err(|e| e.to_string())?;
            let opts = mamori_server::people::service::ImportOptions { apply_valid };
            let report = mamori_server::people::service::import_csv(
                &state,
                &Who::Cli,
                None,
                None,
                &bytes,
                opts,
            )
            .await
            .map_err(|e| e.to_string())?;
            for e in &report.errors {
                let column = e
                    .column
                    .as_deref()
                    .map(|c| format!(" [{c}]"))
                    .unwrap_or_default();
                eprintln!(
                    "{}:{}{column}: {} ({})",
                    file.display(),
                    e.line,
                    e.message,
                    e.code
                );
            }
            let applied = report.events.len();
            if report.applied {
                println!(
                    "{applied} events applied or scheduled ({} rows, {})",
                    report.rows, report.encoding
                );
            } else if !report.errors.is_empty() {
                println!("nothing applied: {} errors in {} rows (use --apply-valid to apply the valid rows)", report.errors.len(), report.rows);
            }
            Ok(if report.errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Report {
            what: ReportCommand::Export { out },
        } => {
            let state = AppState::open_cli(cfg).await.map_err(|e| e.to_string())?;
            let pdf = out
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
            let bytes = mamori_server::reports::export(&state, pdf)
                .await
                .map_err(|e| e.to_string())?;
            std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
            eprintln!(
                "Report written to {} ({} bytes).",
                out.display(),
                bytes.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { what } => {
            let state = AppState::open_cli(cfg).await.map_err(|e| e.to_string())?;
            match what {
                TokenCommand::Create { system, scopes } => {
                    let (id, token) = mamori_server::tokens::create(&state, &system, &scopes)
                        .await
                        .map_err(|e| e.to_string())?;
                    println!("{token}");
                    eprintln!("Token {id} for system {system} ({}). It is shown only now; keep it secret.", scopes.join(" "));
                }
                TokenCommand::Revoke { id } => {
                    mamori_server::tokens::revoke(&state, id)
                        .await
                        .map_err(|e| e.to_string())?;
                    eprintln!("Token {id} revoked.");
                }
                TokenCommand::List => {
                    let mut conn = state
                        .db()
                        .pool()
                        .acquire()
                        .await
                        .map_err(|e| e.to_string())?;
                    for (id, system, scopes, created, revoked) in
                        mamori_server::tokens::list(&mut conn)
                            .await
                            .map_err(|e| e.to_string())?
                    {
                        let state = revoked
                            .map(|r| format!("revoked {}", mamori_server::clock::format_unix(r)))
                            .unwrap_or_else(|| "live".into());
                        println!(
                            "{id}\t{system}\t{scopes}\tcreated {}\t{state}",
                            mamori_server::clock::format_unix(created)
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger {
            what: LedgerCommand::VerifyBundle { .. },
        } => Ok(ExitCode::from(2)), // answered above, without settings
        Command::Ledger {
            what: LedgerCommand::RotateKey,
        } => {
            let data = cfg.data_dir.clone();
            let key_path = cfg.ledger.signing_key.clone();
            let state = AppState::open_cli(cfg).await.map_err(|e| e.to_string())?;
            let now = state.clock().unix();
            let r = state
                .ledger()
                .rotate_key(&data, key_path.as_deref(), now)
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", r.new);
            eprintln!("retired: {}", r.retired);
            eprintln!("handover checkpoint (signed by both keys):\n{}", r.handover);
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger {
            what: LedgerCommand::Verify,
        } => {
            let state = AppState::open_cli(cfg).await.map_err(|e| e.to_string())?;
            let v = state.ledger().verify().await.map_err(|e| e.to_string())?;
            match (v.problem, v.first_bad) {
                (None, _) => {
                    println!("intact: {} records, root {}", v.size, v.root);
                    Ok(ExitCode::SUCCESS)
                }
                (Some(p), Some(i)) => {
                    println!("first bad record: {i}");
                    eprintln!("{p}");
                    Ok(ExitCode::from(1))
                }
                (Some(p), None) => {
                    println!("ledger does not verify: {p}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::User {
            what: UserCommand::ResetPassword { login },
        } => {
            let state = AppState::open_cli(cfg).await.map_err(|e| e.to_string())?;
            let account = {
                let mut conn = state
                    .db()
                    .pool()
                    .acquire()
                    .await
                    .map_err(|e| e.to_string())?;
                mamori_server::identity::store::by_login(&mut conn, &login)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no account with login {login:?}"))?
            };
            let otp =
                mamori_server::identity::service::reset_password(&state, Who::Cli, "", account.id)
                    .await
                    .map_err(|e| e.to_string())?;
            println!("{otp}");
            eprintln!("One-time password for {login}: it must be changed at first login.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `mamori ledger verify-bundle`: 0 verified, 1 does not verify, 2 unreadable.
fn verify_bundle(file: &std::path::Path, key: Option<&str>) -> ExitCode {
    use mamori_server::ledger::bundle::verify_bundle;
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("mamori: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    match verify_bundle(&bytes, key) {
        Ok(summary) => {
            println!("{}: {summary}", file.display());
            ExitCode::SUCCESS
        }
        Err(e) if e.is_malformed() => {
            eprintln!("mamori: {}: {e}", file.display());
            ExitCode::from(2)
        }
        Err(e) => {
            println!("{}: DOES NOT VERIFY: {e}", file.display());
            ExitCode::from(1)
        }
    }
}
