//! The `outbox` table: every email, written before it is sent, with its delivery state.
//!
//! A worker claims due rows with a conditional UPDATE (`... WHERE id = ? AND status =
//! 'pending'`, one row affected or none), which works on SQLite and PostgreSQL alike, so two
//! instances never send the same row.

use std::collections::HashSet;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::schema::outbox;
use super::states::text_enum;
use super::{new_id, DbConn};
use crate::audit;

text_enum! {
    /// Where an email stands.
    pub enum OutboxStatus("outbox status") {
        /// Waiting to be sent (again, after a temporary failure).
        Pending = "pending",
        /// Claimed by a worker that is sending it.
        Sending = "sending",
        /// Delivered to the SMTP server; its bodies are cleared.
        Sent = "sent",
        /// Refused for good, or given up after too many temporary failures.
        Failed = "failed",
    }
}

text_enum! {
    /// What an email is for; also the name of its template set (templates/email/<kind>).
    pub enum MailKind("email kind") {
        Invite = "invite",
        Reminder = "reminder",
        Deadline = "deadline",
        Reopened = "reopened",
        /// A submission's receipt, to the country's coordinators and approver.
        Receipt = "receipt",
        /// A response sent for national sign-off, to the country's approver.
        SignOffRequested = "sign_off_requested",
        /// The secretariat returned a response with queries.
        Returned = "returned",
        /// A coordinator handed sections to a colleague: the colleague's contributor link.
        Assignment = "assignment",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    #[diesel(deserialize_as = String)]
    pub kind: MailKind,
    pub survey_id: String,
    pub country_iso3: String,
    pub contact_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    #[diesel(deserialize_as = String)]
    pub status: OutboxStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub claimed_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A message to queue.
pub struct NewMessage<'a> {
    pub kind: MailKind,
    pub survey_id: &'a str,
    pub country_iso3: &'a str,
    pub contact_id: Option<&'a str>,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body_text: &'a str,
    pub body_html: &'a str,
}

/// Queue a message, and record it in the audit log (its kind and recipient, never its body).
pub fn enqueue(conn: &mut DbConn, m: &NewMessage, now: NaiveDateTime) -> QueryResult<String> {
    conn.transaction(|conn| {
        let id = insert(conn, m, now)?;
        let event = audit::Event {
            survey_id: m.survey_id,
            country_iso3: m.country_iso3,
            actor: audit::Actor::System,
            kind: audit::AuditKind::EmailQueued,
            detail: serde_json::json!({
                "message": id,
                "kind": m.kind.as_str(),
                "recipient": m.recipient,
            }),
        };
        audit::record(conn, &event, now)?;
        Ok(id)
    })
}

fn insert(conn: &mut DbConn, m: &NewMessage, now: NaiveDateTime) -> QueryResult<String> {
    let id = new_id();
    diesel::insert_into(outbox::table)
        .values((
            outbox::id.eq(&id),
            outbox::kind.eq(m.kind.as_str()),
            outbox::survey_id.eq(m.survey_id),
            outbox::country_iso3.eq(m.country_iso3),
            outbox::contact_id.eq(m.contact_id),
            outbox::recipient.eq(m.recipient),
            outbox::subject.eq(m.subject),
            outbox::body_text.eq(m.body_text),
            outbox::body_html.eq(m.body_html),
            outbox::status.eq(OutboxStatus::Pending.as_str()),
            outbox::attempts.eq(0),
            outbox::next_attempt_at.eq(now),
            outbox::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

/// Claim up to `limit` due messages, after releasing claims older than `stale` (a worker
/// died mid-send).
pub fn claim_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    stale: Duration,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    diesel::update(
        outbox::table
            .filter(outbox::status.eq(OutboxStatus::Sending.as_str()))
            .filter(outbox::claimed_at.lt(now - stale)),
    )
    .set(outbox::status.eq(OutboxStatus::Pending.as_str()))
    .execute(conn)?;
    let candidates: Vec<String> = outbox::table
        .filter(outbox::status.eq(OutboxStatus::Pending.as_str()))
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
                .filter(outbox::status.eq(OutboxStatus::Pending.as_str())),
        )
        .set((
            outbox::status.eq(OutboxStatus::Sending.as_str()),
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

/// Give back a message this worker claimed but did not send.
pub fn release(conn: &mut DbConn, id: &str) -> QueryResult<()> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::status.eq(OutboxStatus::Sending.as_str())),
    )
    .set(outbox::status.eq(OutboxStatus::Pending.as_str()))
    .execute(conn)?;
    Ok(())
}

/// A claimed message was delivered: its bodies, which held the personal link, are cleared.
/// Recorded in the audit log.
pub fn mark_sent(conn: &mut DbConn, row: &OutboxRow, now: NaiveDateTime) -> QueryResult<()> {
    conn.transaction(|conn| {
        let n = diesel::update(claimed(&row.id))
            .set((
                outbox::status.eq(OutboxStatus::Sent.as_str()),
                outbox::sent_at.eq(now),
                outbox::attempts.eq(row.attempts + 1),
                outbox::body_text.eq(""),
                outbox::body_html.eq(""),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)?;
        if n == 1 {
            let event = audit::Event {
                survey_id: &row.survey_id,
                country_iso3: &row.country_iso3,
                actor: audit::Actor::System,
                kind: audit::AuditKind::EmailDelivered,
                detail: serde_json::json!({
                    "message": row.id,
                    "kind": row.kind.as_str(),
                    "recipient": row.recipient,
                }),
            };
            audit::record(conn, &event, now)?;
        }
        Ok(())
    })
}

/// A claimed message failed for now: try again at `next_attempt_at`.
pub fn mark_retry(
    conn: &mut DbConn,
    row: &OutboxRow,
    error: &str,
    next_attempt_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(claimed(&row.id))
        .set((
            outbox::status.eq(OutboxStatus::Pending.as_str()),
            outbox::attempts.eq(row.attempts + 1),
            outbox::next_attempt_at.eq(next_attempt_at),
            outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A claimed message failed for good.
pub fn mark_failed(conn: &mut DbConn, row: &OutboxRow, error: &str) -> QueryResult<()> {
    diesel::update(claimed(&row.id))
        .set((
            outbox::status.eq(OutboxStatus::Failed.as_str()),
            outbox::attempts.eq(row.attempts + 1),
            outbox::last_error.eq(Some(error)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The outbox row with this id.
type ById<'a> = diesel::dsl::Filter<outbox::table, diesel::dsl::Eq<outbox::id, &'a str>>;
/// ...while a worker holds its claim.
type Claimed<'a> = diesel::dsl::Filter<ById<'a>, diesel::dsl::Eq<outbox::status, &'static str>>;

/// The row `id` while a worker holds its claim.
fn claimed(id: &str) -> Claimed<'_> {
    outbox::table
        .filter(outbox::id.eq(id))
        .filter(outbox::status.eq(OutboxStatus::Sending.as_str()))
}

/// The contacts of a survey already sent (or about to be sent) a message of this kind: a
/// failed message does not count.
pub fn contacts_with(
    conn: &mut DbConn,
    survey_id: &str,
    kind: MailKind,
) -> QueryResult<HashSet<String>> {
    Ok(outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .filter(outbox::kind.eq(kind.as_str()))
        .filter(outbox::status.ne(OutboxStatus::Failed.as_str()))
        .select(outbox::contact_id)
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect())
}

/// What the status table needs of one email.
#[derive(Debug, Clone, Queryable)]
pub struct MailSummary {
    pub country_iso3: String,
    pub contact_id: Option<String>,
    #[diesel(deserialize_as = String)]
    pub kind: MailKind,
    #[diesel(deserialize_as = String)]
    pub status: OutboxStatus,
    pub sent_at: Option<NaiveDateTime>,
}

/// Every email of a survey, in brief.
pub fn survey_mail(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<MailSummary>> {
    outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .select((
            outbox::country_iso3,
            outbox::contact_id,
            outbox::kind,
            outbox::status,
            outbox::sent_at,
        ))
        .load(conn)
}

/// The emails of a survey that failed for good, newest first.
pub fn failures(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<OutboxRow>> {
    outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .filter(outbox::status.eq(OutboxStatus::Failed.as_str()))
        .order(outbox::created_at.desc())
        .select(OutboxRow::as_select())
        .load(conn)
}

/// How many emails of a survey are in each state (states with none are left out).
pub fn counts(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<(OutboxStatus, i64)>> {
    let rows: Vec<(String, i64)> = outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .load(conn)?;
    rows.into_iter()
        .map(|(status, n)| {
            OutboxStatus::try_from(status)
                .map(|s| (s, n))
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
        })
        .collect()
}

/// One email sent (or waiting) to someone of a country, without its body.
#[derive(Debug, Clone, Queryable)]
pub struct CountryMessage {
    pub contact_id: Option<String>,
    pub recipient: String,
    #[diesel(deserialize_as = String)]
    pub kind: MailKind,
    #[diesel(deserialize_as = String)]
    pub status: OutboxStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

/// A country's emails in a survey, newest first.
pub fn country_messages(
    conn: &mut DbConn,
    survey_id: &str,
    iso3: &str,
) -> QueryResult<Vec<CountryMessage>> {
    outbox::table
        .filter(outbox::survey_id.eq(survey_id))
        .filter(outbox::country_iso3.eq(iso3))
        .order((outbox::created_at.desc(), outbox::id))
        .select((
            outbox::contact_id,
            outbox::recipient,
            outbox::kind,
            outbox::status,
            outbox::attempts,
            outbox::last_error,
            outbox::created_at,
            outbox::sent_at,
        ))
        .load(conn)
}
