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
use diesel::prelude::*;
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};

use crate::config::MailSettings;
use crate::db::schema::outbox;
use crate::db::{new_id, DbConn, DbError, Pool};

pub const STATUS_PENDING: &str = "pending";
pub const STATUS_SENDING: &str = "sending";
pub const STATUS_SENT: &str = "sent";
pub const STATUS_FAILED: &str = "failed";
/// After this many temporary failures a message is given up (and shown as failed).
pub const MAX_ATTEMPTS: i32 = 10;
pub const STALE_CLAIM_MINUTES: i64 = 10;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub kind: String,
    pub survey_id: String,
    pub country_iso3: String,
    pub contact_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A message to queue.
pub struct NewMessage<'a> {
    pub kind: &'a str,
    pub survey_id: &'a str,
    pub country_iso3: &'a str,
    pub contact_id: Option<&'a str>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
}

pub fn enqueue(conn: &mut DbConn, m: &NewMessage, now: NaiveDateTime) -> QueryResult<String> {
    let id = new_id();
    diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(&id),
            outbox::kind.eq(m.kind),
            outbox::survey_id.eq(m.survey_id),
            outbox::country_iso3.eq(m.country_iso3),
            outbox::contact_id.eq(m.contact_id),
            outbox::recipient.eq(m.recipient),
            outbox::subject.eq(m.subject),
            outbox::body_text.eq(m.body_text),
            outbox::body_html.eq(m.body_html),
            outbox::status.eq(STATUS_PENDING),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Claim up to `limit` due messages for this worker.
pub fn claim_due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    // Release claims left by a worker that died mid-send.
    diesel::update(
        outbox::table
            .filter(outbox::status.eq(STATUS_SENDING))
            .filter(outbox::claimed_at.lt(now - Duration::minutes(STALE_CLAIM_MINUTES))),
    )
    .set(outbox::status.eq(STATUS_PENDING))
    .execute(conn)?;
    let candidates: Vec<String> = outbox::table
        .filter(outbox::status.eq(STATUS_PENDING))
        .filter(outbox::next_attempt_at.le(now))
        .order((outbox::next_attempt_at, outbox::created_at))
        .select(outbox::id)
        .limit(limit)
        .load(conn)?;
    let mut claimed = Vec::new();
    for id in candidates {
        let n = diesel::update(
            outbox::table
                .filter(outbox::id.eq(&id))
                .filter(outbox::status.eq(STATUS_PENDING)),
        )
        .set((
            outbox::status.eq(STATUS_SENDING),
            outbox::claimed_at.eq(now),
        ))
        .execute(conn)?;
        if n == 1 {
            let row: OutboxRow = outbox::table
                .find(&id)
                .select(OutboxRow::as_select())
                .get_result(conn)?;
            claimed.push(row);
        }
    }
    Ok(claimed)
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
) -> QueryResult<()> {
    let target = outbox::table
        .filter(outbox::id.eq(&row.id))
        .filter(outbox::status.eq(STATUS_SENDING));
    match result {
        Delivery::Sent => {
            // The bodies held the personal link: not kept once it is delivered.
            diesel::update(target)
                .set((
                    outbox::status.eq(STATUS_SENT),
                    outbox::sent_at.eq(now),
                    outbox::attempts.eq(row.attempts + 1),
                    outbox::body_text.eq(""),
                    outbox::body_html.eq(""),
                    outbox::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
        }
        Delivery::Temporary(e) if row.attempts + 1 < MAX_ATTEMPTS => {
            let factor = 2u32.saturating_pow(row.attempts.max(0) as u32).min(120);
            let delay = (retry_base * factor).min(StdDuration::from_secs(3600));
            let delay = Duration::from_std(delay).unwrap_or(Duration::hours(1));
            diesel::update(target)
                .set((
                    outbox::status.eq(STATUS_PENDING),
                    outbox::attempts.eq(row.attempts + 1),
                    outbox::next_attempt_at.eq(now + delay),
                    outbox::last_error.eq(Some(e)),
                ))
                .execute(conn)?;
        }
        Delivery::Temporary(e) | Delivery::Permanent(e) => {
            diesel::update(target)
                .set((
                    outbox::status.eq(STATUS_FAILED),
                    outbox::attempts.eq(row.attempts + 1),
                    outbox::last_error.eq(Some(e)),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
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
    Config(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailError> {
        let transport = SmtpTransport::from_url(&settings.smtp_url)
            .map_err(|e| MailError::Config(e.to_string()))?
            .timeout(Some(StdDuration::from_secs(30)))
            .build();
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::Config(e.to_string()))?;
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
                    diesel::update(
                        outbox::table
                            .filter(outbox::id.eq(&rest.id))
                            .filter(outbox::status.eq(STATUS_SENDING)),
                    )
                    .set(outbox::status.eq(STATUS_PENDING))
                    .execute(&mut conn)
                    .map_err(DbError::from)?;
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
                        tracing::error!(error = %e, "outbox worker");
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

pub fn failures(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<OutboxRow>> {
    outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .filter(outbox::status.eq(STATUS_FAILED))
        .order(outbox::created_at.desc())
        .select(OutboxRow::as_select())
        .load(conn)
}

pub fn counts(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<(String, i64)>> {
    outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .load(conn)
}
