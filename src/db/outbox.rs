//! The `outbox` table: every email, written before it is sent, with its delivery state.
//!
//! A worker claims a batch of due rows with one conditional UPDATE (`... WHERE id IN (...) AND
//! status = 'pending' ... RETURNING`), which works on SQLite and PostgreSQL alike and returns
//! only the rows it changed, so two instances never send the same row; the claim's time is its
//! lease, and only the holder of a lease marks the row.

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
    let ids = enqueue_all(conn, std::slice::from_ref(m), now)?;
    Ok(ids.into_iter().next().unwrap_or_default())
}

/// Queue several messages, each recorded in the audit log as [`enqueue`] does, with one
/// INSERT per [`MESSAGES_PER_INSERT`] messages and one per 500 audit entries: a campaign of
/// 10,000 invitations takes a few dozen statements, not 30,000 round trips. Their ids, in order.
pub fn enqueue_all(
    conn: &mut DbConn,
    messages: &[NewMessage],
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    super::transaction(conn, |conn| {
        let ids: Vec<String> = messages.iter().map(|_| new_id()).collect();
        let rows: Vec<_> = messages
            .iter()
            .zip(&ids)
            .map(|(m, id)| {
                (
                    outbox::id.eq(id),
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
                )
            })
            .collect();
        for chunk in rows.chunks(MESSAGES_PER_INSERT) {
            super::insert_rows!(conn, outbox::table, chunk)?;
        }
        let events: Vec<audit::Event> = messages
            .iter()
            .zip(&ids)
            .map(|(m, id)| {
                mail_event(
                    audit::AuditKind::EmailQueued,
                    m.survey_id,
                    m.country_iso3,
                    id,
                    m.kind,
                    m.recipient,
                )
            })
            .collect();
        audit::record_all(conn, &events, now)?;
        Ok(ids)
    })
}

/// The audit entry of a step of one message: its id, kind and recipient, never its body.
fn mail_event<'a>(
    step: audit::AuditKind,
    survey_id: &'a str,
    country_iso3: &'a str,
    message: &str,
    kind: MailKind,
    recipient: &str,
) -> audit::Event<'a> {
    audit::Event {
        survey_id,
        country_iso3,
        actor: audit::Actor::System,
        kind: step,
        detail: serde_json::json!({
            "message": message,
            "kind": kind.as_str(),
            "recipient": recipient,
        }),
    }
}

/// Thirteen parameters a row: well inside both backends' limits on bound parameters; a few
/// hundred emails of a few KiB each make a statement of about a MiB.
const MESSAGES_PER_INSERT: usize = 200;

/// Claim up to `limit` due messages in three statements whatever the count: the ids of due rows
/// (pending and due, or claimed longer than `stale` ago by a worker that died mid-send), then
/// one conditional UPDATE of those ids that returns the rows it changed. A row another worker
/// claimed in between no longer matches the UPDATE's condition, so two workers never hold the
/// same row; each returned row's `claimed_at` is this claim's lease, checked when it is marked.
pub fn claim_due(
    conn: &mut DbConn,
    now: NaiveDateTime,
    stale: Duration,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    let due = |now: NaiveDateTime| {
        outbox::status
            .eq(OutboxStatus::Pending.as_str())
            .and(outbox::next_attempt_at.le(now))
            .or(outbox::status
                .eq(OutboxStatus::Sending.as_str())
                .and(outbox::claimed_at.lt(now - stale)))
    };
    // The due rows in their order, read as two index ranges of `outbox_due_order` (pending,
    // and the few sending) and merged here: one condition with an OR made both backends scan
    // and sort the whole table for every batch (on PostgreSQL, 25 ms of each 64 messages'
    // claim once 10,000 were queued).
    let first = |status: OutboxStatus| {
        outbox::table
            .filter(outbox::status.eq(status.as_str()))
            .order((outbox::next_attempt_at, outbox::created_at))
            .select((outbox::next_attempt_at, outbox::created_at, outbox::id))
            .limit(limit)
    };
    let mut candidates: Vec<(NaiveDateTime, NaiveDateTime, String)> = first(OutboxStatus::Pending)
        .filter(outbox::next_attempt_at.le(now))
        .load(conn)?;
    candidates.extend(
        first(OutboxStatus::Sending)
            .filter(outbox::claimed_at.lt(now - stale))
            .load::<(NaiveDateTime, NaiveDateTime, String)>(conn)?,
    );
    candidates.sort();
    candidates.truncate(usize::try_from(limit).unwrap_or(0));
    let candidates: Vec<String> = candidates.into_iter().map(|(_, _, id)| id).collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    // Only the UPDATE takes SQLite's write turn: it checks `due` again, so the reads need not
    // be in the turn, and a poll that finds nothing due takes neither the turn nor the writer.
    let mut claimed: Vec<OutboxRow> = super::write_statement(conn, |conn| {
        diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(&candidates))
                .filter(due(now)),
        )
        .set((
            outbox::status.eq(OutboxStatus::Sending.as_str()),
            outbox::claimed_at.eq(now),
        ))
        // The struct lists the columns in the table's order.
        .returning(outbox::all_columns)
        .get_results(conn)
    })?;
    claimed.sort_by_key(|r| (r.next_attempt_at, r.created_at));
    Ok(claimed)
}

/// Give back messages this worker claimed but did not send (one statement).
pub fn release(conn: &mut DbConn, rows: &[&OutboxRow]) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        for lease in leases(rows) {
            diesel::update(held(lease.0, &lease.1))
                .set(outbox::status.eq(OutboxStatus::Pending.as_str()))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// Claimed messages the server accepted: one UPDATE for the lot (bodies, which held the
/// personal links, cleared), then one INSERT of an audit entry for each row this worker still
/// held, in one transaction.
pub fn mark_sent(conn: &mut DbConn, rows: &[&OutboxRow], now: NaiveDateTime) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    super::transaction(conn, |conn| {
        let mut done: HashSet<String> = HashSet::new();
        for lease in leases(rows) {
            let ids: Vec<String> = diesel::update(held(lease.0, &lease.1))
                .set((
                    outbox::status.eq(OutboxStatus::Sent.as_str()),
                    outbox::sent_at.eq(now),
                    outbox::attempts.eq(outbox::attempts + 1),
                    outbox::body_text.eq(""),
                    outbox::body_html.eq(""),
                    outbox::last_error.eq(None::<String>),
                ))
                .returning(outbox::id)
                .get_results(conn)?;
            done.extend(ids);
        }
        let events: Vec<audit::Event> = rows
            .iter()
            .filter(|r| done.contains(&r.id))
            .map(|row| {
                mail_event(
                    audit::AuditKind::EmailDelivered,
                    &row.survey_id,
                    &row.country_iso3,
                    &row.id,
                    row.kind,
                    &row.recipient,
                )
            })
            .collect();
        audit::record_all(conn, &events, now)?;
        Ok(())
    })
}

/// The rows grouped by the lease they were claimed under (one group in practice: a batch is
/// claimed at once).
fn leases(rows: &[&OutboxRow]) -> Vec<(Option<NaiveDateTime>, Vec<String>)> {
    let mut groups: Vec<(Option<NaiveDateTime>, Vec<String>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|g| g.0 == row.claimed_at) {
            Some(g) => g.1.push(row.id.clone()),
            None => groups.push((row.claimed_at, vec![row.id.clone()])),
        }
    }
    groups
}

/// A claimed message failed for now: try again at `next_attempt_at`.
pub fn mark_retry(
    conn: &mut DbConn,
    row: &OutboxRow,
    error: &str,
    next_attempt_at: NaiveDateTime,
) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(claimed(row))
            .set((
                outbox::status.eq(OutboxStatus::Pending.as_str()),
                outbox::attempts.eq(row.attempts + 1),
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::last_error.eq(Some(error)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

/// A claimed message failed for good.
pub fn mark_failed(conn: &mut DbConn, row: &OutboxRow, error: &str) -> QueryResult<()> {
    super::write_statement(conn, |conn| {
        diesel::update(claimed(row))
            .set((
                outbox::status.eq(OutboxStatus::Failed.as_str()),
                outbox::attempts.eq(row.attempts + 1),
                outbox::last_error.eq(Some(error)),
            ))
            .execute(conn)?;
        Ok(())
    })
}

type Sending<W> = diesel::dsl::Filter<
    diesel::dsl::Filter<outbox::table, W>,
    diesel::dsl::Eq<outbox::status, &'static str>,
>;
/// Rows still held under one lease.
type Held<W> = diesel::dsl::Filter<Sending<W>, diesel::dsl::Eq<outbox::claimed_at, NaiveDateTime>>;

/// The rows `ids` while still held under the lease `claimed_at` (a row whose claim went stale
/// and was taken by another worker is not touched).
fn held(
    claimed_at: Option<NaiveDateTime>,
    ids: &[String],
) -> Held<diesel::dsl::EqAny<outbox::id, &[String]>> {
    outbox::table
        .filter(outbox::id.eq_any(ids))
        .filter(outbox::status.eq(OutboxStatus::Sending.as_str()))
        // A claimed row always has its time; none matches no row.
        .filter(outbox::claimed_at.eq(claimed_at.unwrap_or_default()))
}

/// The row while this worker holds its claim.
fn claimed(row: &OutboxRow) -> Held<diesel::dsl::Eq<outbox::id, &str>> {
    outbox::table
        .filter(outbox::id.eq(row.id.as_str()))
        .filter(outbox::status.eq(OutboxStatus::Sending.as_str()))
        .filter(outbox::claimed_at.eq(row.claimed_at.unwrap_or_default()))
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
