//! Decisions on 秘密情報 as ledger records (SPEC §3.4: "decisions on secret
//! assets are records"), batched so that recording never slows a check.
//!
//! A check hands its record to a bounded queue and answers; one task takes
//! whatever has queued (up to [`BATCH`] records, or what arrived within
//! [`WINDOW`]) and appends it to the ledger in one group commit. When the
//! queue is full a check waits for room, so records are never dropped to
//! keep up. What a crash can lose is the queue's content, at most one
//! window's worth of decisions already answered; those callers hold the
//! answer, and the decisions can be recomputed from the grants.
//!
//! The records carry the system code [`SYSTEM`], which no ward system
//! registers, so the retention rule keeps them as long as secret records.

use crate::ledger::Ledger;
use mamori_ledger::record::{AccessRecord, AccessResult};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The system code of decision records.
pub const SYSTEM: &str = "mamori-access";
/// Most records in one ledger append.
pub const BATCH: usize = 2048;
/// How long the batcher waits for more records after the first.
pub const WINDOW: Duration = Duration::from_millis(20);
const QUEUE: usize = 16 * 1024;

enum Msg {
    Record(Box<AccessRecord>),
    Flush(oneshot::Sender<()>),
}

/// The queue in front of the ledger.
#[derive(Clone)]
pub struct DecisionLog {
    tx: mpsc::Sender<Msg>,
}

/// One decision to record.
pub struct DecisionRecord<'a> {
    pub time_micros: i64,
    pub subject: i64,
    pub action: &'a str,
    pub asset_code: &'a str,
    pub allow: bool,
    pub detail: serde_json::Value,
    pub source_ip: Option<&'a str>,
}

impl DecisionLog {
    /// Starts the batcher in front of `ledger`.
    pub fn start(ledger: Ledger) -> DecisionLog {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(ledger, rx));
        DecisionLog { tx }
    }

    /// Queues a record (waits only when the queue is full).
    pub async fn log(&self, d: DecisionRecord<'_>) {
        let clip = |s: &str, max: usize| -> String {
            let mut out: String = s.chars().filter(|c| !c.is_control()).collect();
            while out.len() > max {
                out.pop();
            }
            if out.is_empty() {
                "-".into()
            } else {
                out
            }
        };
        let detail = d.detail.to_string();
        let record = AccessRecord {
            time_micros: d.time_micros,
            system: SYSTEM.into(),
            event_id: format!("d{}", crate::auth::token::random_hex(12)),
            actor: format!("person:{}", d.subject),
            action: format!("access.check.{}", d.action),
            asset: clip(
                &format!("asset:{}", d.asset_code),
                mamori_ledger::record::MAX_ASSET,
            ),
            result: if d.allow {
                AccessResult::Success
            } else {
                AccessResult::Denied
            },
            source_address: d
                .source_ip
                .filter(|s| !s.is_empty())
                .map(|s| clip(s, mamori_ledger::record::MAX_SOURCE_ADDRESS)),
            detail: (detail.len() <= mamori_ledger::record::MAX_DETAIL).then_some(detail),
            salt: mamori_ledger::record::new_salt(),
        };
        if self.tx.send(Msg::Record(Box::new(record))).await.is_err() {
            tracing::error!("decision record lost: the recording task has stopped");
        }
    }

    /// Waits until every record queued before this call is in the ledger.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(ledger: Ledger, mut rx: mpsc::Receiver<Msg>) {
    let mut batch: Vec<AccessRecord> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        take(first, &mut batch, &mut waiting);
        let deadline = tokio::time::Instant::now() + WINDOW;
        while batch.len() < BATCH && waiting.is_empty() {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => take(m, &mut batch, &mut waiting),
                _ => break,
            }
        }
        // Whatever else is already queued goes in the same append.
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut batch, &mut waiting),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            let records = std::mem::take(&mut batch);
            let n = records.len();
            let mut tries = 0;
            loop {
                match ledger.submit(records.clone()).await {
                    Ok(_) => break,
                    Err(e) if tries < 5 => {
                        tries += 1;
                        tracing::warn!(error = %e, records = n, "decision records: append failed, retrying");
                        tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, records = n, "decision records could not be appended to the ledger");
                        break;
                    }
                }
            }
        }
        for w in waiting.drain(..) {
            let _ = w.send(());
        }
    }
}

fn take(m: Msg, batch: &mut Vec<AccessRecord>, waiting: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Msg::Record(r) => batch.push(*r),
        Msg::Flush(w) => waiting.push(w),
    }
}
