//! Email: templates, the persisted outbox, and the worker that sends it over SMTP.
//!
//! Every message is an `outbox` row before anything is sent. A worker claims a batch of due
//! rows with one conditional UPDATE that returns only the rows it changed (see
//! [`crate::db::outbox::claim_due`]), which works on SQLite and PostgreSQL alike, so two
//! instances never send the same row. The batch goes out over a pool of SMTP connections
//! ([`MailSettings::connections`] messages in flight, at most [`MailSettings::per_minute`] a
//! minute), and the outcome of the whole batch is written in one transaction: a message is
//! marked sent only after the server accepted it (its 250 to the end of DATA).
//!
//! What this guarantees: a message the database records as sent was accepted by the server;
//! a worker that is stopped finishes the sends in flight, records them, and gives the rest
//! back, so nothing is sent twice; a database that cannot take the batch's outcome for a while
//! (restarting, locked) is asked again until it does, for up to half the lease. SMTP cannot
//! give exactly once across a crash: if the process dies after the server's 250 and before the
//! batch's commit, those messages (at most one batch, [`BATCH_PER_CONNECTION`] per connection)
//! are claimed again once their lease is [`STALE_CLAIM_MINUTES`] old and sent a second time,
//! with the same Message-ID, so mail clients recognise the repeat. Nothing is ever lost.

pub mod smtp;
pub mod templates;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::Message;

use crate::config::MailSettings;
use crate::db::outbox::{self, OutboxStatus};
use crate::db::{new_id, DbConn, DbError, Pool, QueryError};
use smtp::{Connections, Relay};

pub use crate::db::outbox::{enqueue, failures, MailKind, NewMessage, OutboxRow};

/// The string forms of [`OutboxStatus`], for callers that compare text.
pub const STATUS_PENDING: &str = OutboxStatus::Pending.as_str();
pub const STATUS_SENDING: &str = OutboxStatus::Sending.as_str();
pub const STATUS_SENT: &str = OutboxStatus::Sent.as_str();
pub const STATUS_FAILED: &str = OutboxStatus::Failed.as_str();
/// After this many temporary failures a message is given up (and shown as failed).
pub const MAX_ATTEMPTS: i32 = 10;
pub const STALE_CLAIM_MINUTES: i64 = 10;
/// A worker claims this many messages per SMTP connection at a time.
pub const BATCH_PER_CONNECTION: usize = 16;

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
        Delivery::Sent => outbox::mark_sent(conn, &[row], now),
        Delivery::Temporary(e) if row.attempts + 1 < MAX_ATTEMPTS => {
            let factor = 2u32.saturating_pow(row.attempts.max(0) as u32).min(120);
            let delay = (retry_base * factor).min(StdDuration::from_secs(3600));
            let delay = Duration::from_std(delay).unwrap_or(Duration::hours(1));
            outbox::mark_retry(conn, row, e, now + delay)
        }
        Delivery::Temporary(e) | Delivery::Permanent(e) => outbox::mark_failed(conn, row, e),
    }
}

/// The SMTP connections, pooled, and what every message shares.
#[derive(Clone)]
pub struct Mailer {
    relay: Arc<Connections>,
    /// The rate limit, shared by every clone of this mailer (one process, one limit).
    pace: Arc<Pace>,
    from: Mailbox,
    pub settings: MailSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("COHERENCE_SMTP_URL: {0}")]
    SmtpUrl(#[source] smtp::RelayUrlError),
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
        let relay = Relay::from_url(&settings.smtp_url, StdDuration::from_secs(30))
            .map_err(MailError::SmtpUrl)?;
        let relay = Connections::new(
            relay,
            settings.connections.max(1) as usize,
            StdDuration::from_secs(60),
        );
        let from: Mailbox = settings.from.parse().map_err(MailError::From)?;
        Ok(Mailer {
            relay: Arc::new(relay),
            pace: Arc::new(Pace::new(settings.per_minute)),
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
        match self.relay.send(message.envelope(), &message.formatted()) {
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

/// Spaces sends out to at most `per_minute` a minute, shared by the sending threads.
struct Pace {
    gap: Option<StdDuration>,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(per_minute: Option<u32>) -> Pace {
        Pace {
            gap: per_minute
                .filter(|n| *n > 0)
                .map(|n| StdDuration::from_secs(60) / n),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Wait for this send's turn; false when `stop` was raised meanwhile (nothing sent then).
    fn wait(&self, stop: &AtomicBool) -> bool {
        let Some(gap) = self.gap else {
            return true;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + gap;
            slot
        };
        while Instant::now() < slot {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep((slot - Instant::now()).min(StdDuration::from_millis(50)));
        }
        true
    }
}

/// Send a claimed batch over up to `connections` connections at once; each message's outcome,
/// or None for those not tried because `stop` was raised.
fn send_batch(
    mailer: &Mailer,
    batch: &[OutboxRow],
    stop: &AtomicBool,
    pace: &Pace,
) -> Vec<Option<Delivery>> {
    let next = AtomicUsize::new(0);
    let threads = (mailer.settings.connections.max(1) as usize).min(batch.len());
    let mut results: Vec<Option<Delivery>> = vec![None; batch.len()];
    let done: Vec<Vec<(usize, Delivery)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(row) = batch.get(i) else { break };
                        if !pace.wait(stop) {
                            break;
                        }
                        mine.push((i, mailer.send(row)));
                    }
                    mine
                })
            })
            .collect();
        // A sending thread does not panic; one that did leaves its messages unsent (released).
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (i, result) in done.into_iter().flatten() {
        if let Some(slot) = results.get_mut(i) {
            *slot = Some(result);
        }
    }
    results
}

/// Send every message that is due now, then return. `progress` is told after each batch.
pub fn drain(
    pool: &Pool,
    mailer: &Mailer,
    worker: &str,
    stop: &AtomicBool,
    mut progress: impl FnMut(&DrainReport),
) -> Result<DrainReport, MailError> {
    let mut report = DrainReport::default();
    let connections = mailer.settings.connections.max(1) as usize;
    // A batch must go out well within its lease, however slow the allowed pace.
    let mut limit = connections * BATCH_PER_CONNECTION;
    if let Some(per_minute) = mailer.settings.per_minute.filter(|n| *n > 0) {
        limit = limit.min((per_minute as usize).max(1));
    }
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(report);
        }
        let batch = {
            let mut conn = pool.get().map_err(DbError::from)?;
            claim_due(&mut conn, Utc::now().naive_utc(), limit as i64).map_err(DbError::from)?
        };
        if batch.is_empty() {
            return Ok(report);
        }
        let claimed = Instant::now();
        let results = send_batch(mailer, &batch, stop, &mailer.pace);
        let mut sent = Vec::new();
        let mut unsent = Vec::new();
        let mut other = Vec::new();
        for (row, result) in batch.iter().zip(results) {
            match result {
                None => unsent.push(row),
                Some(Delivery::Sent) => sent.push(row),
                Some(result) => other.push((row, result)),
            }
        }
        report.sent += sent.len();
        for (row, result) in &other {
            match result {
                Delivery::Temporary(e) => {
                    tracing::warn!(worker, outbox = %row.id, error = %e, "temporary email failure");
                    report.retrying += 1
                }
                Delivery::Permanent(e) => {
                    tracing::warn!(worker, outbox = %row.id, error = %e, "email refused");
                    report.failed += 1
                }
                Delivery::Sent => {}
            }
        }
        until_recorded(stop, claimed, || {
            let mut conn = pool.get().map_err(DbError::from)?;
            let now = Utc::now().naive_utc();
            crate::db::transaction(&mut conn, |conn| {
                outbox::mark_sent(conn, &sent, now)?;
                for (row, result) in &other {
                    record(conn, row, result, mailer.settings.retry_base, now)?;
                }
                // Give back what this worker claimed but did not send.
                outbox::release(conn, &unsent)
            })
            .map_err(DbError::from)
        })?;
        progress(&report);
        if !unsent.is_empty() {
            return Ok(report);
        }
    }
}

/// Until when, after its claim, [`drain`] keeps trying to record a batch's outcome while the
/// database cannot take it (down, restarting, locked): half of [`STALE_CLAIM_MINUTES`], so
/// that no other worker claims the messages it sent, and sends them again, while it still
/// tries (the sending itself took some of the lease).
const RECORD_PATIENCE: StdDuration = StdDuration::from_secs(STALE_CLAIM_MINUTES as u64 * 30);

/// `record`, the write of the outcome of a batch claimed at `claimed`, done again while the
/// database is unavailable, until [`RECORD_PATIENCE`] after the claim and until the worker is
/// told to stop. Given up, the messages it sent stay claimed and go out a second time once
/// their lease is stale, as after a crash; a database back within a few minutes (a PostgreSQL
/// restart, a lock held past the busy timeout) no longer costs a second copy of every message
/// of the batch.
fn until_recorded(
    stop: &AtomicBool,
    claimed: Instant,
    mut record: impl FnMut() -> Result<(), DbError>,
) -> Result<(), DbError> {
    let mut pause = StdDuration::from_millis(100);
    loop {
        match record() {
            Err(e)
                if e.is_unavailable()
                    && !stop.load(Ordering::Relaxed)
                    && claimed.elapsed() + pause < RECORD_PATIENCE =>
            {
                tracing::warn!(
                    error = %crate::error::chain(&e),
                    "outbox: a sent batch could not be recorded yet; trying again"
                );
                std::thread::sleep(pause);
                pause = (pause * 2).min(StdDuration::from_secs(2));
            }
            done => return done,
        }
    }
}

/// The server's background sender.
pub struct Worker {
    /// Seen by `drain` between messages, so a stop does not wait for the rest of a batch.
    stop: Arc<AtomicBool>,
    /// Dropped to wake the worker from its wait between polls.
    wake: Option<mpsc::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    pub fn start(pool: Pool, mailer: Mailer) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (wake, woken) = mpsc::channel::<()>();
        let name = format!("worker-{}", new_id());
        let handle = std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || loop {
                if let Err(e) = drain(&pool, &mailer, &name, &flag, |_| {}) {
                    tracing::error!(error = %crate::error::chain(&e), "outbox worker");
                }
                // Nothing is ever sent on the channel: it is disconnected when the worker stops,
                // which ends the wait at once.
                if !matches!(
                    woken.recv_timeout(mailer.settings.poll),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) || flag.load(Ordering::Relaxed)
                {
                    return;
                }
            })
            .ok();
        Worker {
            stop,
            wake: Some(wake),
            handle,
        }
    }

    /// Finish the message being sent, give back the rest, and stop.
    pub fn stop(mut self) {
        self.signal_stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }

    fn signal_stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.take();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

/// How many emails of a survey are in each state, by the state's string form.
pub fn counts(conn: &mut DbConn, survey_id: &str) -> Result<Vec<(String, i64)>, QueryError> {
    Ok(outbox::counts(conn, survey_id)?
        .into_iter()
        .map(|(status, n)| (status.as_str().to_string(), n))
        .collect())
}
