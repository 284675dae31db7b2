//! Settings: defaults, then a TOML file, then `MAMORI_*` environment
//! variables, then command-line flags (applied by the binary).

use mamori_policy::password::PasswordPolicy;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Folder for the embedded database, keys and secrets.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means `<data_dir>/mamori.db`.
    pub database_url: String,
    pub listen: String,
    /// Load the demo ward on start when the database is empty.
    pub demo: bool,
    /// Mark cookies `Secure` (and use the `__Host-` prefix). Turn off only
    /// for plain-HTTP development on a non-localhost address.
    pub cookie_secure: bool,
    pub session: SessionConfig,
    pub password: PasswordPolicy,
    pub lockout: LockoutConfig,
    /// Concurrent Argon2 computations; the rest wait in a queue (SPEC §6
    /// "bounded under 100 concurrent logins"). 0 = number of cores.
    pub hash_workers: usize,
    pub ledger: LedgerConfig,
    /// How often (milliseconds) the decision engine takes in changes made by
    /// other processes (the command line, other servers on one PostgreSQL).
    /// This server's own changes reach it when their request answers.
    pub access_sync_ms: u64,
    /// WebAuthn relying party for IC cards (K11.2).
    pub cards: CardsConfig,
    /// Which terminal networks belong to which zone of 三層の対策; a login's
    /// zone decides whether a card is required (a ward setting).
    pub zones: Vec<ZoneNetworks>,
    pub mail: MailConfig,
    /// The compiled inspection and audit report (K32.3–4).
    pub report: ReportConfig,
    /// Use cheap Argon2 parameters. Only for the test suite: never in a
    /// real deployment, and `serve` refuses it.
    #[serde(skip)]
    pub insecure_fast_hashing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// The log's origin line in checkpoints and the signing key's name
    /// (a schema-less URL, no spaces or `+`).
    pub origin: String,
    /// `auto` (files with SQLite, the database with PostgreSQL), `file` or `sql`.
    pub store: crate::ledger::StoreKind,
    /// Sign a checkpoint this often (seconds) when the log has grown.
    pub checkpoint_secs: u64,
    /// Verify the whole log this often (seconds).
    pub verify_secs: u64,
    /// Prune the content of records past their retention (K16.2.1) this
    /// often (seconds).
    pub prune_secs: u64,
    /// The checkpoint signing key's file; default `<data>/ledger/signing.key`
    /// (created with mode 0600 on first start). Servers sharing one
    /// PostgreSQL must use the same key.
    pub signing_key: Option<std::path::PathBuf>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            origin: "mamori.city.edogawa.tokyo.jp/ledger".into(),
            store: crate::ledger::StoreKind::Auto,
            checkpoint_secs: 10,
            verify_secs: 600,
            prune_secs: 3600,
            signing_key: None,
        }
    }
}

/// E-mail notifications (SPEC §3.6: "by e-mail where configured"). Mail
/// leaves through the ward's SMTP relay on the internal network; an empty
/// `smtp_host` turns e-mail off (the in-app notifications remain).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    /// The sender address, e.g. `mamori@city.edogawa.tokyo.jp`.
    pub from: String,
    /// Give up one attempt after this many seconds (the outbox retries).
    pub timeout_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_host: String::new(),
            smtp_port: 25,
            from: "mamori@localhost".into(),
            timeout_secs: 10,
        }
    }
}

impl MailConfig {
    pub fn enabled(&self) -> bool {
        !self.smtp_host.trim().is_empty()
    }
}

/// The report's PDF needs a font with Japanese glyphs; its subset is
/// embedded in each PDF (with a ToUnicode map, so the text extracts).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    /// A TrueType/OpenType font file with Japanese glyphs. Default: Debian's
    /// fonts-ipafont-gothic.
    pub font_path: PathBuf,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            font_path: "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Idle time in seconds after which the session locks and needs the
    /// holder to authenticate again (K12.1.5: no terminal left open unattended).
    pub idle_secs: i64,
    /// The shorter idle time once the session has opened secret information
    /// (K12.1.5 「秘密情報にアクセス可能とした状態で」).
    pub secret_idle_secs: i64,
    /// Absolute lifetime in seconds; a locked session ends at this point too.
    pub absolute_secs: i64,
    /// Sensitive actions (credentials, cards, rights) need an authentication
    /// at most this many seconds old.
    pub reauth_secs: i64,
}

/// The WebAuthn relying party: the host name and origin browsers see.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardsConfig {
    /// The relying-party id: the site's host name (`mamori.city.edogawa.tokyo.jp`).
    pub rp_id: String,
    /// The origin pages are served from (`https://mamori.city.edogawa.tokyo.jp`).
    pub origin: String,
    /// The name authenticators show.
    pub rp_name: String,
}

impl Default for CardsConfig {
    fn default() -> Self {
        CardsConfig {
            rp_id: "localhost".into(),
            origin: "http://localhost:8080".into(),
            rp_name: "Mamori".into(),
        }
    }
}

/// Networks (CIDR, e.g. `10.10.0.0/16`) of one zone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneNetworks {
    pub zone: mamori_policy::access::NetworkZone,
    pub networks: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutConfig {
    /// Failures before an account is locked.
    pub account_threshold: i64,
    /// Failures from one source address before it is throttled.
    pub source_threshold: i64,
    /// First lock duration in seconds; doubles with each further failure.
    pub base_secs: i64,
    /// Longest lock in seconds.
    pub max_secs: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("mamori-data"),
            database_url: String::new(),
            listen: "127.0.0.1:8080".into(),
            demo: false,
            cookie_secure: true,
            session: SessionConfig::default(),
            password: PasswordPolicy::default(),
            lockout: LockoutConfig::default(),
            hash_workers: 0,
            access_sync_ms: 1000,
            ledger: LedgerConfig::default(),
            cards: CardsConfig::default(),
            zones: Vec::new(),
            mail: MailConfig::default(),
            report: ReportConfig::default(),
            insecure_fast_hashing: false,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_secs: 15 * 60,
            secret_idle_secs: 5 * 60,
            absolute_secs: 10 * 3600,
            reauth_secs: 5 * 60,
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            account_threshold: 5,
            source_threshold: 20,
            base_secs: 60,
            max_secs: 3600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
}

impl Config {
    /// Reads the TOML file (if given) and then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.into(),
                    source,
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, v: String) -> Result<T, ConfigError> {
            v.parse().map_err(|_| ConfigError::Env {
                name: name.into(),
                reason: format!("cannot parse {v:?}"),
            })
        }
        if let Some(v) = get("MAMORI_DATA") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("MAMORI_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("MAMORI_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("MAMORI_DEMO") {
            self.demo = parse("MAMORI_DEMO", v)?;
        }
        if let Some(v) = get("MAMORI_COOKIE_SECURE") {
            self.cookie_secure = parse("MAMORI_COOKIE_SECURE", v)?;
        }
        if let Some(v) = get("MAMORI_SESSION_IDLE_SECS") {
            self.session.idle_secs = parse("MAMORI_SESSION_IDLE_SECS", v)?;
        }
        if let Some(v) = get("MAMORI_CARDS_RP_ID") {
            self.cards.rp_id = v;
        }
        if let Some(v) = get("MAMORI_CARDS_ORIGIN") {
            self.cards.origin = v;
        }
        if let Some(v) = get("MAMORI_LEDGER_STORE") {
            self.ledger.store = match v.as_str() {
                "auto" => crate::ledger::StoreKind::Auto,
                "file" => crate::ledger::StoreKind::File,
                "sql" => crate::ledger::StoreKind::Sql,
                _ => {
                    return Err(ConfigError::Env {
                        name: "MAMORI_LEDGER_STORE".into(),
                        reason: format!("{v:?} is not auto, file or sql"),
                    })
                }
            };
        }
        if let Some(v) = get("MAMORI_LEDGER_SIGNING_KEY") {
            self.ledger.signing_key = Some(v.into());
        }
        if let Some(v) = get("MAMORI_REPORT_FONT") {
            self.report.font_path = v.into();
        }
        if let Some(v) = get("MAMORI_SMTP_HOST") {
            self.mail.smtp_host = v;
        }
        if let Some(v) = get("MAMORI_SMTP_PORT") {
            self.mail.smtp_port = parse("MAMORI_SMTP_PORT", v)?;
        }
        if let Some(v) = get("MAMORI_MAIL_FROM") {
            self.mail.from = v;
        }
        if let Some(v) = get("MAMORI_HASH_WORKERS") {
            self.hash_workers = parse("MAMORI_HASH_WORKERS", v)?;
        }
        if let Some(v) = get("MAMORI_ACCESS_SYNC_MS") {
            self.access_sync_ms = parse("MAMORI_ACCESS_SYNC_MS", v)?;
        }
        Ok(())
    }

    /// The database URL, defaulting to the SQLite file in the data folder.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("mamori.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_names_bad_values() {
        let mut c: Config =
            toml::from_str("listen = \"0.0.0.0:9000\"\n[session]\nidle_secs = 60").unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.session.idle_secs, 60);
        c.apply_env(|k| (k == "MAMORI_LISTEN").then(|| "127.0.0.1:1".to_string()))
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:1");
        let err = c
            .apply_env(|k| (k == "MAMORI_DEMO").then(|| "yes please".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("MAMORI_DEMO"));
        assert!(toml::from_str::<Config>("no_such_setting = 1").is_err());
    }

    #[test]
    fn zones_and_the_relying_party_come_from_the_file() {
        let c: Config = toml::from_str(
            "[cards]\nrp_id = \"mamori.example.jp\"\norigin = \"https://mamori.example.jp\"\n\
             [[zones]]\nzone = \"my_number\"\nnetworks = [\"10.10.0.0/16\"]\n\
             [session]\nsecret_idle_secs = 120",
        )
        .unwrap();
        assert_eq!(c.cards.rp_id, "mamori.example.jp");
        assert_eq!(
            c.zones[0].zone,
            mamori_policy::access::NetworkZone::MyNumber
        );
        assert_eq!(c.session.secret_idle_secs, 120);
        assert_eq!(c.session.idle_secs, 15 * 60);
        assert!(toml::from_str::<Config>("[[zones]]\nzone = \"moon\"\nnetworks = []").is_err());
    }
}
