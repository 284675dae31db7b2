//! E-mail notifications through an outbox (SPEC §3.6). A service that
//! changes something and wants people told adds rows to `mail_outbox` in
//! the same transaction as the change; [`send_due`] (the background task,
//! or a test at a given time) sends them afterwards and retries with
//! backoff. So a change never waits for, or is lost because of, a mail
//! server that is down: the mail waits instead.
//!
//! Mail carries no report content beyond its title and kind: the link
//! leads to Mamori, where the reader's permissions apply.

use crate::app::AppState;
use crate::config::MailConfig;
use crate::db::Conn;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::Row;
use std::time::Duration;

/// After this many failed attempts a mail is given up (kept, with its error).
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a sender holds a mail it is sending before another may retry it.
const LEASE_SECS: i64 = 300;
/// Mails sent per call.
const BATCH: i64 = 50;

/// Queues a mail in the caller's transaction, if e-mail is configured.
pub async fn enqueue(
    conn: &mut Conn,
    config: &MailConfig,
    to: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    if !config.enabled() || to.trim().is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO mail_outbox (to_addr, subject, body, created_at, attempts, next_attempt_at)
         VALUES ($1, $2, $3, $4, 0, $4)",
    )
    .bind(to)
    .bind(subject)
    .bind(body)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The e-mail address kept for a person, if any.
pub async fn address_of(conn: &mut Conn, person: i64) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT email FROM notification_addresses WHERE person_id = $1")
        .bind(person)
        .fetch_optional(conn)
        .await?;
    row.map(|r| r.try_get(0)).transpose()
}

/// Keeps a person's e-mail address for notifications.
pub async fn set_address(
    conn: &mut Conn,
    person: i64,
    email: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notification_addresses (person_id, email, set_at) VALUES ($1, $2, $3)
         ON CONFLICT (person_id) DO UPDATE SET email = excluded.email, set_at = excluded.set_at",
    )
    .bind(person)
    .bind(email)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes a person's address (no more e-mail; in-app notices remain).
pub async fn clear_address(conn: &mut Conn, person: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM notification_addresses WHERE person_id = $1")
        .bind(person)
        .execute(conn)
        .await?;
    Ok(())
}

/// A person sets (or, with an empty value, removes) the address their
/// incident notifications are mailed to. The record names the domain only.
pub async fn set_own_address(
    state: &AppState,
    actor: &crate::auth::Actor,
    email: &str,
) -> Result<(), crate::web::error::AppError> {
    use crate::web::error::AppError;
    let Some(person) = actor.person_id else {
        return Err(AppError::invalid("email", "incident.no_person", &[]));
    };
    let email = email.trim();
    let valid = email.is_empty()
        || (email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.parse::<lettre::Address>().is_ok());
    if !valid {
        return Err(AppError::invalid("email", "mail.bad_address", &[]));
    }
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    if email.is_empty() {
        clear_address(&mut tx, person.0).await?;
    } else {
        set_address(&mut tx, person.0, email, now).await?;
    }
    let domain = email.rsplit_once('@').map(|d| d.1).unwrap_or("");
    let rec = crate::records::Record::new(
        actor.who(),
        "notification_address.set",
        person.record_ref(),
        "K10.1",
    )
    .from_ip(actor.ip())
    .detail(serde_json::json!({ "set": !email.is_empty(), "domain": domain }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    Ok(())
}

/// What one [`send_due`] call did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub sent: usize,
    pub failed: usize,
}

fn backoff(attempts: i64) -> i64 {
    // 1, 2, 4 … minutes, at most an hour.
    (60i64 << attempts.clamp(0, 6)).min(3600)
}

fn build(config: &MailConfig, to: &str, subject: &str, body: &str) -> Result<Message, String> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|_| "the configured sender address is not valid".to_string())?;
    let to: Mailbox = to
        .parse()
        .map_err(|_| "the recipient address is not valid".to_string())?;
    let body = Body::new_with_encoding(body.to_string(), ContentTransferEncoding::Base64)
        .map_err(|_| "the body cannot be encoded".to_string())?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(body),
        )
        .map_err(|e| e.to_string())
}

/// Sends the mails due at `now`. A failure is kept on the row and retried
/// later with backoff; nothing is lost.
pub async fn send_due(state: &AppState, now: i64) -> Result<SendReport, sqlx::Error> {
    let config = &state.config().mail;
    let mut report = SendReport::default();
    if !config.enabled() {
        return Ok(report);
    }
    let mut conn = state.db().pool().acquire().await?;
    let rows = sqlx::query(
        "SELECT id, to_addr, subject, body, attempts, next_attempt_at FROM mail_outbox
         WHERE sent_at IS NULL AND next_attempt_at <= $1 AND attempts < $2
         ORDER BY id LIMIT $3",
    )
    .bind(now)
    .bind(MAX_ATTEMPTS)
    .bind(BATCH)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(report);
    }
    let transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.smtp_host.trim())
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(config.timeout_secs.max(1))))
            .build();
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let to: String = r.try_get(1)?;
        let subject: String = r.try_get(2)?;
        let body: String = r.try_get(3)?;
        let attempts: i64 = r.try_get(4)?;
        let due: i64 = r.try_get(5)?;
        // Claim the row so another server sharing the database does not
        // send it too.
        let claimed = sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 AND sent_at IS NULL",
        )
        .bind(now + LEASE_SECS)
        .bind(id)
        .bind(due)
        .execute(&mut *conn)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            continue;
        }
        let outcome = match build(config, &to, &subject, &body) {
            Ok(msg) => transport.send(msg).await.map(|_| ()).map_err(|e| {
                // The error names the server's answer, never the content.
                format!("smtp: {e}")
            }),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                sqlx::query("UPDATE mail_outbox SET sent_at = $1, attempts = $2, last_error = '' WHERE id = $3")
                    .bind(now)
                    .bind(attempts + 1)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                report.sent += 1;
            }
            Err(e) => {
                tracing::warn!(mail = id, attempt = attempts + 1, error = %e, "mail not sent; will retry");
                sqlx::query(
                    "UPDATE mail_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4",
                )
                .bind(attempts + 1)
                .bind(now + backoff(attempts))
                .bind(e.chars().take(300).collect::<String>())
                .bind(id)
                .execute(&mut *conn)
                .await?;
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_an_hour() {
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(1), 120);
        assert_eq!(backoff(5), 1920);
        assert_eq!(backoff(9), 3600);
    }

    #[test]
    fn bad_addresses_are_errors_not_panics() {
        let c = MailConfig::default();
        assert!(build(&c, "not an address", "s", "b").is_err());
        assert!(build(&c, "a@example.jp", "件名", "本文").is_ok());
    }
}
