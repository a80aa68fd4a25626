//! Email: templates, the persisted outbox, and the worker that sends it over SMTP.
//!
//! Every message is an `outbox` row before anything is sent. A worker claims due rows with a
//! conditional UPDATE (`... WHERE id = ? AND status = 'pending'`, one row affected or none),
//! which works on SQLite and PostgreSQL alike, so two instances never send the same row. A
//! claimed row that was never finished (the process died mid-send) is released after
//! [`STALE_CLAIM_MINUTES`]; its deterministic Message-ID lets mail clients recognise a repeat.

pub mod templates;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::MailSettings;
use crate::db::outbox::{self, OutboxStatus};
use crate::db::{new_id, DbConn, DbError, Pool, QueryError};

pub use crate::db::outbox::{enqueue, failures, MailKind, NewMessage, OutboxRow};

/// The string forms of [`OutboxStatus`], for callers that compare text.
pub const STATUS_PENDING: &str = OutboxStatus::Pending.as_str();
pub const STATUS_SENDING: &str = OutboxStatus::Sending.as_str();
pub const STATUS_SENT: &str = OutboxStatus::Sent.as_str();
pub const STATUS_FAILED: &str = OutboxStatus::Failed.as_str();
/// After this many temporary failures a message is given up (and shown as failed).
pub const MAX_ATTEMPTS: i32 = 10;
pub const STALE_CLAIM_MINUTES: i64 = 10;

/// Claim up to `limit` due messages for this worker.
pub fn claim_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<OutboxRow>, QueryError> {
    outbox::claim_due(conn, now, Duration::minutes(STALE_CLAIM_MINUTES), limit)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Sent,
    /// Try again later (server down, 4xx).
    Temporary(String),
    /// The server refused it for good (5xx), or the message cannot be built.
    Permanent(String),
}

pub fn record(
    conn: &mut DbConn,
    row: &OutboxRow,
    result: &Delivery,
    retry_base: StdDuration,
    now: NaiveDateTime,
) -> Result<(), QueryError> {
    match result {
        Delivery::Sent => outbox::mark_sent(conn, row, now),
        Delivery::Temporary(e) if row.attempts + 1 < MAX_ATTEMPTS => {
            let factor = 2u32.saturating_pow(row.attempts.max(0) as u32).min(120);
            let delay = (retry_base * factor).min(StdDuration::from_secs(3600));
            let delay = Duration::from_std(delay).unwrap_or(Duration::hours(1));
            outbox::mark_retry(conn, row, e, now + delay)
        }
        Delivery::Temporary(e) | Delivery::Permanent(e) => outbox::mark_failed(conn, row, e),
    }
}

/// The SMTP connection, built once and pooled.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    pub settings: MailSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("COHERENCE_SMTP_URL: {0}")]
    SmtpUrl(#[source] lettre::transport::smtp::Error),
    #[error("COHERENCE_MAIL_FROM: {0}")]
    From(#[source] lettre::address::AddressError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<QueryError> for MailError {
    fn from(e: QueryError) -> Self {
        MailError::Db(DbError::Query(e))
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailError> {
        let transport = SmtpTransport::from_url(&settings.smtp_url)
            .map_err(MailError::SmtpUrl)?
            .timeout(Some(StdDuration::from_secs(30)))
            .build();
        let from: Mailbox = settings.from.parse().map_err(MailError::From)?;
        Ok(Mailer {
            transport,
            from,
            settings: settings.clone(),
        })
    }

    pub fn from_address(&self) -> String {
        self.from.email.to_string()
    }

    pub fn send(&self, row: &OutboxRow) -> Delivery {
        let to: Mailbox = match row.recipient.parse() {
            Ok(m) => m,
            Err(e) => return Delivery::Permanent(format!("bad recipient: {e}")),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&row.subject)
            // The same row always has the same Message-ID, so a repeat is recognisable.
            .message_id(Some(format!("<{}@coherence.invalid>", row.id)))
            .multipart(MultiPart::alternative_plain_html(
                row.body_text.clone(),
                row.body_html.clone(),
            ));
        let message = match message {
            Ok(m) => m,
            Err(e) => return Delivery::Permanent(format!("cannot build the message: {e}")),
        };
        match self.transport.send(&message) {
            Ok(_) => Delivery::Sent,
            Err(e) if e.is_permanent() => Delivery::Permanent(e.to_string()),
            Err(e) => Delivery::Temporary(e.to_string()),
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

/// Send every message that is due now, then return. `progress` is told after each message.
pub fn drain(
    pool: &Pool,
    mailer: &Mailer,
    worker: &str,
    stop: &AtomicBool,
    mut progress: impl FnMut(&DrainReport),
) -> Result<DrainReport, MailError> {
    let mut report = DrainReport::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(report);
        }
        let batch = {
            let mut conn = pool.get().map_err(DbError::from)?;
            claim_due(&mut conn, Utc::now().naive_utc(), 10).map_err(DbError::from)?
        };
        if batch.is_empty() {
            return Ok(report);
        }
        for (i, row) in batch.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                // Give back what this worker claimed but did not send.
                let mut conn = pool.get().map_err(DbError::from)?;
                for rest in &batch[i..] {
                    outbox::release(&mut conn, &rest.id)?;
                }
                return Ok(report);
            }
            let result = mailer.send(row);
            match &result {
                Delivery::Sent => report.sent += 1,
                Delivery::Temporary(e) => {
                    tracing::warn!(worker, outbox = %row.id, error = %e, "temporary email failure");
                    report.retrying += 1
                }
                Delivery::Permanent(e) => {
                    tracing::warn!(worker, outbox = %row.id, error = %e, "email refused");
                    report.failed += 1
                }
            }
            let mut conn = pool.get().map_err(DbError::from)?;
            record(
                &mut conn,
                row,
                &result,
                mailer.settings.retry_base,
                Utc::now().naive_utc(),
            )
            .map_err(DbError::from)?;
            progress(&report);
        }
    }
}

/// The server's background sender.
pub struct Worker {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub fn start(pool: Pool, mailer: Mailer) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = format!("worker-{}", new_id());
        let handle = std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    if let Err(e) = drain(&pool, &mailer, &name, &flag, |_| {}) {
                        tracing::error!(error = %crate::error::chain(&e), "outbox worker");
                    }
                    // Sleep in short steps so a stop is quick.
                    let mut slept = StdDuration::ZERO;
                    while slept < mailer.settings.poll && !flag.load(Ordering::Relaxed) {
                        let step = StdDuration::from_millis(50);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })
            .ok();
        Worker { stop, handle }
    }

    /// Finish the message being sent, give back the rest, and stop.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How many emails of a survey are in each state, by the state's string form.
pub fn counts(conn: &mut DbConn, survey_id: &str) -> Result<Vec<(String, i64)>, QueryError> {
    Ok(outbox::counts(conn, survey_id)?
        .into_iter()
        .map(|(status, n)| (status.as_str().to_string(), n))
        .collect())
}
