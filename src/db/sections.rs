//! `section_states`, each section's version: the optimistic lock between officials.
//! [`write_section`] writes a section's answers under that lock, recorded by one audit entry.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::answers::{self, AnswersWrite};
use super::responses::ResponseStatus;
use super::schema::{responses, section_states};
use super::sql::Kept;
use super::{responses as response_rows, DbConn};
use crate::survey::answer::Item;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = section_states)]
pub struct SectionStateRow {
    pub response_id: String,
    pub section_id: String,
    pub version: i32,
    pub updated_at: NaiveDateTime,
    pub updated_by: String,
    /// When a contributor (or the coordinator) marked the section ready; a later save clears it.
    pub ready_at: Option<NaiveDateTime>,
    /// The link that marked it ready.
    pub ready_by: Option<String>,
}

impl SectionStateRow {
    pub fn is_ready(&self) -> bool {
        self.ready_at.is_some()
    }
}

pub fn section_states(conn: &mut DbConn, response_id: &str) -> QueryResult<Vec<SectionStateRow>> {
    // Read on every page view and save: see `db::native!`.
    super::native!(conn, |c| section_states::table
        .filter(section_states::response_id.eq(response_id))
        .select(SectionStateRow::as_select())
        .load(c))
}

/// A response's section states as the link's look-up gathers them (`[[section, version,
/// updated_at, updated_by, ready_at, ready_by], ...]`, or nothing for none: see
/// [`super::tokens::open_token`]).
pub fn from_json(response_id: &str, text: Option<&str>) -> QueryResult<Vec<SectionStateRow>> {
    type Row = (String, i32, String, String, Option<String>, Option<String>);
    let decode = |e: Box<dyn std::error::Error + Send + Sync>| DieselError::DeserializationError(e);
    let rows: Vec<Row> = match text {
        Some(text) => serde_json::from_str(text).map_err(|e| decode(e.into()))?,
        None => Vec::new(),
    };
    // A time as each backend writes it in JSON: PostgreSQL's ISO 8601 (`T`), SQLite's text as
    // diesel stored it (a space).
    let time = |t: &str| {
        NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"))
            .map_err(|e| decode(format!("section state time {t:?}: {e}").into()))
    };
    rows.into_iter()
        .map(|(section_id, version, at, by, ready_at, ready_by)| {
            Ok(SectionStateRow {
                response_id: response_id.to_string(),
                section_id,
                version,
                updated_at: time(&at)?,
                updated_by: by,
                ready_at: ready_at.as_deref().map(time).transpose()?,
                ready_by,
            })
        })
        .collect()
}

/// The responses of a survey with at least one section saved.
pub fn started_responses(conn: &mut DbConn, survey_id: &str) -> QueryResult<HashSet<String>> {
    Ok(section_states::table
        .inner_join(responses::table.on(responses::id.eq(section_states::response_id)))
        .filter(responses::survey_id.eq(survey_id))
        .select(section_states::response_id)
        .distinct()
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

pub struct SectionWrite<'a> {
    pub response_id: &'a str,
    pub section_id: &'a str,
    pub base_version: i32,
    pub token_id: &'a str,
    pub survey_version: &'a str,
    /// The survey version the response was last saved under (`responses.survey_version`):
    /// the response row is written only when it differs.
    pub stored_survey_version: &'a str,
    /// The survey and country, for the audit log.
    pub survey_id: &'a str,
    pub country_iso3: &'a str,
    /// Questions whose answer changes, with their new items (empty: the answer is removed).
    pub changes: &'a [(String, Vec<Item>)],
    /// A question's items as stored when the section was at `base_version` (none: no
    /// answer): the claim of that version guarantees they are still those.
    pub stored: &'a dyn Fn(&str) -> &'a [Item],
    /// Every question hidden by a condition before the changes (under the stored answers).
    pub hidden_before: &'a HashSet<String>,
    /// Every question hidden by a condition once the changes are applied.
    pub hidden_after: &'a HashSet<String>,
    pub now: NaiveDateTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Saved {
        version: i32,
    },
    /// Someone saved the section after `base_version`: nothing was written.
    Stale,
    /// The response may no longer change (sent for sign-off, submitted): nothing was written.
    NotEditable,
}

/// Write a section's changed answers if, and only if, the section is still at `base_version`.
pub fn write_section(conn: &mut DbConn, w: &SectionWrite) -> QueryResult<WriteOutcome> {
    write_sections(conn, std::slice::from_ref(w))
}

/// Write several sections' changes as one save (one transaction, each section under its own
/// lock, each recorded in the save log and the audit like a save of that section): all are
/// written or none. The outcome's version is the last section's.
///
/// Inside the caller's transaction, a single section's write needs no savepoint: nothing is
/// written unless its first statement claims the section.
pub fn write_sections(conn: &mut DbConn, writes: &[SectionWrite]) -> QueryResult<WriteOutcome> {
    use diesel::connection::TransactionManager;
    let depth = <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?;
    if depth.is_some() && writes.len() <= 1 {
        return write_all(conn, writes);
    }
    let mut refused = None;
    let result = super::transaction(conn, |conn| match write_all(conn, writes)? {
        saved @ WriteOutcome::Saved { .. } => Ok(saved),
        other => {
            refused = Some(other);
            Err(DieselError::RollbackTransaction)
        }
    });
    match (result, refused) {
        (Err(DieselError::RollbackTransaction), Some(outcome)) => Ok(outcome),
        (result, _) => result,
    }
}

/// The writes in order; stops at the first section it cannot claim (the caller rolls back).
fn write_all(conn: &mut DbConn, writes: &[SectionWrite]) -> QueryResult<WriteOutcome> {
    let mut outcome = WriteOutcome::Saved { version: 0 };
    for w in writes {
        outcome = write_in(conn, w)?;
        if !matches!(outcome, WriteOutcome::Saved { .. }) {
            break;
        }
    }
    Ok(outcome)
}

/// One section's write, inside the caller's transaction: the claim (one statement), the
/// answers (one INSERT, and one DELETE when stored items go), the audit entry (one INSERT);
/// the hidden questions and the response row only when they change.
fn write_in(conn: &mut DbConn, w: &SectionWrite) -> QueryResult<WriteOutcome> {
    let new_version = w.base_version + 1;
    if !claim(conn, w, new_version)? {
        return Ok(if response_rows::is_editable(conn, w.response_id)? {
            WriteOutcome::Stale
        } else {
            WriteOutcome::NotEditable
        });
    }
    if w.stored_survey_version != w.survey_version {
        response_rows::touch_editable(conn, w.response_id, w.survey_version, w.now)?;
    }
    let changes: Vec<(&str, &[Item])> = w
        .changes
        .iter()
        .map(|(q, items)| (q.as_str(), items.as_slice()))
        .collect();
    answers::replace_answers(
        conn,
        &AnswersWrite {
            response_id: w.response_id,
            section_id: w.section_id,
            changes: &changes,
            hidden: &|q| w.hidden_after.contains(q),
            stored: w.stored,
            token_id: w.token_id,
            now: w.now,
        },
    )?;
    if w.hidden_after != w.hidden_before {
        answers::sync_hidden(conn, w.response_id, w.hidden_after)?;
    }
    let changed: Vec<&str> = w.changes.iter().map(|(q, _)| q.as_str()).collect();
    crate::audit::record(
        conn,
        &crate::audit::Event {
            survey_id: w.survey_id,
            country_iso3: w.country_iso3,
            actor: crate::audit::Actor::Link(w.token_id),
            kind: crate::audit::AuditKind::Saved,
            detail: serde_json::json!({
                "section": w.section_id,
                "version": new_version,
                "changed": changed,
            }),
        },
        w.now,
    )?;
    Ok(WriteOutcome::Saved {
        version: new_version,
    })
}

/// The section's version bump, the optimistic lock between officials, in one statement that
/// also checks that the response may still change; false when the section is no longer at
/// `base_version` or the response is no longer editable (nothing written).
///
/// On PostgreSQL the check reads the response row `FOR SHARE`: a change of state in progress
/// (which updates that row) makes the save wait and then see the new state, and a change of
/// state begun after the check waits for the save to commit. On SQLite the statement is the
/// transaction's first write, which takes the database's write lock.
fn claim(conn: &mut DbConn, w: &SectionWrite, new_version: i32) -> QueryResult<bool> {
    use diesel::sql_types::{Integer, Text, Timestamp};
    // Kept prepared (see `Kept`): the statement runs on every save.
    let claimed = if w.base_version == 0 {
        // A concurrent first save of the section makes this insert nothing.
        let q = Kept::<FirstClaim>::new(
            "INSERT INTO section_states (version, updated_at, updated_by, response_id, \
             section_id) SELECT ",
        )
        .bind::<Integer, _>(new_version)
        .sql(", ")
        .bind::<Timestamp, _>(w.now)
        .sql(", ")
        .bind::<Text, _>(w.token_id)
        .sql(", ")
        .bind::<Text, _>(w.response_id)
        .sql(", ")
        .bind::<Text, _>(w.section_id)
        .sql(" WHERE ");
        still_editable(conn, q, w.response_id)
            .sql(" ON CONFLICT (response_id, section_id) DO NOTHING")
            .execute(conn)?
    } else {
        let q = Kept::<NextClaim>::new("UPDATE section_states SET version = ")
            .bind::<Integer, _>(new_version)
            .sql(", updated_at = ")
            .bind::<Timestamp, _>(w.now)
            .sql(", updated_by = ")
            .bind::<Text, _>(w.token_id)
            .sql(", ready_at = NULL, ready_by = NULL WHERE response_id = ")
            .bind::<Text, _>(w.response_id)
            .sql(" AND section_id = ")
            .bind::<Text, _>(w.section_id)
            .sql(" AND version = ")
            .bind::<Integer, _>(w.base_version)
            .sql(" AND ");
        still_editable(conn, q, w.response_id).execute(conn)?
    };
    Ok(claimed == 1)
}

super::sql::statement_names! {
    /// A section's first save: inserts its state at version 1.
    FirstClaim;
    /// A later save: bumps the section's version from the one the form was opened at.
    NextClaim;
}

/// The claim's condition that the response is still a draft or returned.
fn still_editable<'f, Id: super::sql::StatementName>(
    conn: &DbConn,
    q: Kept<'f, Id>,
    response_id: &'f str,
) -> Kept<'f, Id> {
    use diesel::sql_types::Text;
    q.sql("EXISTS (SELECT 1 FROM responses WHERE id = ")
        .bind::<Text, _>(response_id)
        .sql(" AND status IN (")
        .bind::<Text, _>(ResponseStatus::Draft.as_str())
        .sql(", ")
        .bind::<Text, _>(ResponseStatus::Returned.as_str())
        .sql(")")
        .sql(share_lock(conn))
        .sql(")")
}

fn share_lock(conn: &DbConn) -> &'static str {
    match conn {
        DbConn::Postgres(_) => " FOR SHARE",
        DbConn::Sqlite(_) => "",
    }
}

/// What marking a section ready did.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadyOutcome {
    /// Marked ready now.
    Marked,
    /// It was ready already (the form sent twice): nothing changed.
    Already,
    /// Nothing is saved in it yet: there is nothing to be ready.
    NotStarted,
}

/// Mark a saved section ready, by the link `token_id`.
pub fn mark_ready(
    conn: &mut DbConn,
    response_id: &str,
    section_id: &str,
    token_id: &str,
    now: NaiveDateTime,
) -> QueryResult<ReadyOutcome> {
    let the_section = section_states::table
        .filter(section_states::response_id.eq(response_id))
        .filter(section_states::section_id.eq(section_id));
    let marked = diesel::update(the_section.filter(section_states::ready_at.is_null()))
        .set((
            section_states::ready_at.eq(now),
            section_states::ready_by.eq(token_id),
        ))
        .execute(conn)?;
    if marked > 0 {
        return Ok(ReadyOutcome::Marked);
    }
    let exists: i64 = the_section.count().get_result(conn)?;
    Ok(if exists > 0 {
        ReadyOutcome::Already
    } else {
        ReadyOutcome::NotStarted
    })
}
