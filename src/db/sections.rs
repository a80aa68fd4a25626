//! `section_states`, each section's version: the optimistic lock between officials.
//! [`write_section`] writes a section's answers under that lock, recorded by one audit entry.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::result::Error as DieselError;

use super::answers::{self, AnswersWrite};
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
/// lock, each recorded in the audit like a save of that section): all are written or none.
/// The outcome's version is the last section's.
///
/// A single section's write is one statement ([`save`]), which needs no transaction of its
/// own, nor a savepoint inside the caller's: it writes nothing unless it claims the section.
pub fn write_sections(conn: &mut DbConn, writes: &[SectionWrite]) -> QueryResult<WriteOutcome> {
    if let [one] = writes {
        return super::write_statement(conn, |conn| write_in(conn, one));
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

/// One section's write: the save statement ([`save`]), and when it wrote nothing, why.
fn write_in(conn: &mut DbConn, w: &SectionWrite) -> QueryResult<WriteOutcome> {
    let new_version = w.base_version + 1;
    if !save(conn, w, new_version)? {
        return Ok(if response_rows::is_editable(conn, w.response_id)? {
            WriteOutcome::Stale
        } else {
            WriteOutcome::NotEditable
        });
    }
    Ok(WriteOutcome::Saved {
        version: new_version,
    })
}

/// A section's save in one statement, an INSERT into the view `section_saves` whose trigger
/// (migration 000029) writes it: the section's version bump, the optimistic lock between
/// officials, which also checks that the response may still change; then, only if that
/// claimed the section, the answer items dropped, the new and changed items, the questions
/// hidden by conditions and the response's survey version when they change, and the save's
/// audit entry. False when the section is no longer at `base_version` or the response is no
/// longer editable: nothing was written.
///
/// One statement needs no transaction of its own, and on PostgreSQL it is one round trip.
fn save(conn: &mut DbConn, w: &SectionWrite, new_version: i32) -> QueryResult<bool> {
    use crate::audit::{Actor, AuditKind};
    use diesel::sql_types::{Integer, Nullable, Text, Timestamp};

    #[derive(QueryableByName)]
    struct Saved {
        #[diesel(sql_type = Integer)]
        #[allow(dead_code)] // read only to count the rows
        saved: i32,
    }
    let changes: Vec<(&str, &[Item])> = w
        .changes
        .iter()
        .map(|(q, items)| (q.as_str(), items.as_slice()))
        .collect();
    let rows = answers::ItemRows::of(&AnswersWrite {
        response_id: w.response_id,
        section_id: w.section_id,
        changes: &changes,
        hidden: &|q| w.hidden_after.contains(q),
        stored: w.stored,
        token_id: w.token_id,
        now: w.now,
    })?;
    // Every question hidden after the save, when that changes (the stored rows are brought
    // in line with it, whatever they were).
    let hidden = match w.hidden_after != w.hidden_before {
        true => Some(super::sql::json(w.hidden_after)?),
        false => None,
    };
    let survey_version = (w.stored_survey_version != w.survey_version).then_some(w.survey_version);
    let changed: Vec<&str> = w.changes.iter().map(|(q, _)| q.as_str()).collect();
    let detail = serde_json::json!({
        "section": w.section_id,
        "version": new_version,
        "changed": changed,
    })
    .to_string();
    // Kept prepared (see `Kept`): the statement runs on every save.
    let saved: Vec<Saved> = Kept::<SaveSection>::new(
        "INSERT INTO section_saves (response_id, section_id, base_version, saved_at, \
         token_id, answer_rows, dropped_items, hidden, survey_version, chain, audit_at, \
         country_iso3, actor, kind, detail) VALUES (",
    )
    .bind::<Text, _>(w.response_id)
    .sql(", ")
    .bind::<Text, _>(w.section_id)
    .sql(", ")
    .bind::<Integer, _>(w.base_version)
    .sql(", ")
    .bind::<Timestamp, _>(w.now)
    .sql(", ")
    .bind::<Text, _>(w.token_id)
    .sql(", ")
    .bind::<Nullable<Text>, _>(rows.upserted)
    .sql(", ")
    .bind::<Nullable<Text>, _>(rows.dropped)
    .sql(", ")
    .bind::<Nullable<Text>, _>(hidden)
    .sql(", ")
    .bind::<Nullable<Text>, _>(survey_version)
    .sql(", ")
    .bind::<Text, _>(w.survey_id)
    .sql(", ")
    .bind::<Timestamp, _>(super::audit::stored_time(w.now))
    .sql(", ")
    .bind::<Text, _>(w.country_iso3)
    .sql(", ")
    .bind::<Text, _>(Actor::Link(w.token_id).text())
    .sql(", ")
    .bind::<Text, _>(AuditKind::Saved.as_str())
    .sql(", ")
    .bind::<Text, _>(detail)
    .sql(") RETURNING 1 AS saved")
    .load(conn)?;
    Ok(!saved.is_empty())
}

super::sql::statement_names! {
    /// A section's save (see [`save`]).
    SaveSection;
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
    super::write_statement(conn, |conn| {
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
    })
}
