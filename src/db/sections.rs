//! `section_states` (each section's version, the optimistic lock between officials) and
//! `save_log` (every save); [`write_section`] writes a section's answers under that lock.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::answers::{self, AnswerWrite};
use super::schema::{responses, save_log, section_states};
use super::{new_id, responses as response_rows, DbConn};
use crate::survey::answer::Item;

#[derive(Debug, Clone, Queryable, Selectable)]
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
    section_states::table
        .filter(section_states::response_id.eq(response_id))
        .select(SectionStateRow::as_select())
        .load(conn)
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
    /// The survey and country, for the audit log.
    pub survey_id: &'a str,
    pub country_iso3: &'a str,
    /// Questions whose answer changes, with their new items (empty: the answer is removed).
    pub changes: &'a [(String, Vec<Item>)],
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
pub fn write_sections(conn: &mut DbConn, writes: &[SectionWrite]) -> QueryResult<WriteOutcome> {
    let mut not_editable = false;
    let result = conn.transaction::<_, DieselError, _>(|conn| {
        let mut version = 0;
        for w in writes {
            version = write_in(conn, w, &mut not_editable)?;
        }
        Ok(version)
    });
    match result {
        Err(DieselError::RollbackTransaction) if not_editable => Ok(WriteOutcome::NotEditable),
        Ok(version) => Ok(WriteOutcome::Saved { version }),
        Err(DieselError::RollbackTransaction)
        | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(WriteOutcome::Stale)
        }
        Err(e) => Err(e),
    }
}

/// One section's write, inside the caller's transaction.
fn write_in(
    conn: &mut DbConn,
    w: &SectionWrite,
    not_editable: &mut bool,
) -> Result<i32, DieselError> {
    {
        // The response's state is checked by the first write, which on PostgreSQL waits for a
        // change of state in progress (a write first also lets SQLite's busy_timeout queue
        // concurrent writers instead of failing a lock upgrade).
        if !response_rows::touch_editable(conn, w.response_id, w.survey_version, w.now)? {
            *not_editable = true;
            return Err(DieselError::RollbackTransaction);
        }
        // The section's version bump is the lock between officials.
        let new_version = w.base_version + 1;
        let claimed = if w.base_version == 0 {
            diesel::insert_into(section_states::table)
                .values((
                    section_states::response_id.eq(w.response_id),
                    section_states::section_id.eq(w.section_id),
                    section_states::version.eq(new_version),
                    section_states::updated_at.eq(w.now),
                    section_states::updated_by.eq(w.token_id),
                ))
                .execute(conn)?
        } else {
            diesel::update(
                section_states::table
                    .filter(section_states::response_id.eq(w.response_id))
                    .filter(section_states::section_id.eq(w.section_id))
                    .filter(section_states::version.eq(w.base_version)),
            )
            .set((
                section_states::version.eq(new_version),
                section_states::updated_at.eq(w.now),
                section_states::updated_by.eq(w.token_id),
                // Saved again after it was marked ready: in progress again.
                section_states::ready_at.eq(None::<NaiveDateTime>),
                section_states::ready_by.eq(None::<String>),
            ))
            .execute(conn)?
        };
        if claimed == 0 {
            return Err(DieselError::RollbackTransaction);
        }
        for (question, items) in w.changes {
            answers::replace_answer(
                conn,
                &AnswerWrite {
                    response_id: w.response_id,
                    question_id: question,
                    section_id: w.section_id,
                    items,
                    visible: !w.hidden_after.contains(question),
                    token_id: w.token_id,
                    now: w.now,
                },
            )?;
        }
        answers::sync_hidden(conn, w.response_id, w.hidden_after)?;
        diesel::insert_into(save_log::table)
            .values((
                save_log::id.eq(new_id()),
                save_log::response_id.eq(w.response_id),
                save_log::section_id.eq(w.section_id),
                save_log::token_id.eq(w.token_id),
                save_log::version.eq(new_version),
                save_log::changed_questions.eq(w.changes.len() as i32),
                save_log::saved_at.eq(w.now),
            ))
            .execute(conn)?;
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
        Ok(new_version)
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
