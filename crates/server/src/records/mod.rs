//! Every state change leaves a record, written through [`append`] in the
//! same database transaction as the change (K16.2.1–2). Today the records go
//! to an append-only table guarded by triggers; the Merkle ledger will take
//! this interface over.

pub mod routes;
pub mod store;

use crate::db::Conn;
use serde::Serialize;

/// The outcome a record states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// Who did something: a person, a system, or Mamori itself (scheduled work,
/// the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Person(crate::ids::PersonId),
    Account(crate::ids::AccountId),
    System(String),
    /// The `mamori` command line, run by whoever holds the server's files.
    Cli,
    /// Mamori's own scheduled work (e.g. applying a dated personnel event).
    Scheduler,
    /// Someone not yet identified (a failed login).
    Anonymous,
}

impl Who {
    pub fn record_ref(&self) -> String {
        match self {
            Who::Person(id) => id.record_ref(),
            Who::Account(id) => id.record_ref(),
            Who::System(code) => format!("system:{code}"),
            Who::Cli => "mamori:cli".into(),
            Who::Scheduler => "mamori:scheduler".into(),
            Who::Anonymous => "anonymous".into(),
        }
    }
}

/// One record, as the services write it.
#[derive(Debug, Clone)]
pub struct Record {
    pub actor: Who,
    /// Dotted action name, e.g. `account.lock`.
    pub action: &'static str,
    /// What was acted on, e.g. `account:12`.
    pub target: String,
    pub outcome: Outcome,
    /// The clause the action serves.
    pub clause: &'static str,
    pub source_ip: String,
    /// Details as a JSON object. Never a secret: no password, hash or token.
    pub detail: serde_json::Value,
}

impl Record {
    pub fn new(
        actor: Who,
        action: &'static str,
        target: impl Into<String>,
        clause: &'static str,
    ) -> Record {
        Record {
            actor,
            action,
            target: target.into(),
            outcome: Outcome::Success,
            clause,
            source_ip: String::new(),
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn outcome(mut self, o: Outcome) -> Record {
        self.outcome = o;
        self
    }

    pub fn detail(mut self, d: serde_json::Value) -> Record {
        self.detail = d;
        self
    }

    pub fn from_ip(mut self, ip: &str) -> Record {
        self.source_ip = ip.into();
        self
    }
}

/// Appends a record inside the caller's transaction and returns its index.
pub async fn append(conn: &mut Conn, time_us: i64, record: &Record) -> Result<i64, sqlx::Error> {
    store::insert(conn, time_us, record).await
}
