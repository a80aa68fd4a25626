//! `definition_changes` (each new version of a survey file accepted at start, with its report)
//! and `definition_notices` (the sections a response should look at again); and the stored
//! answers such a change reads and moves: the drafts' `answers` and the submitted versions'
//! `version_answers` rows, never a version's canonical `content`.

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    answers, definition_changes, definition_notices, hidden_questions, queries, responses,
    survey_versions, version_answers,
};
use super::sql::Sql;
use super::{new_id, DbConn};
use crate::survey::changes::{Impact, Orphan, Remap, StoredItem};

/// The version of a survey loaded most recently, with its file's text.
pub fn latest_version(conn: &mut DbConn, survey_id: &str) -> QueryResult<Option<(String, String)>> {
    survey_versions::table
        .filter(survey_versions::survey_id.eq(survey_id))
        .order(survey_versions::loaded_at.desc())
        .select((survey_versions::version, survey_versions::source))
        .first(conn)
        .optional()
}

/// Whether this version of the survey was loaded before (and so accepted then).
pub fn is_known_version(conn: &mut DbConn, survey_id: &str, version: &str) -> QueryResult<bool> {
    let n: i64 = survey_versions::table
        .filter(survey_versions::survey_id.eq(survey_id))
        .filter(survey_versions::version.eq(version))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Every stored answer item of a survey: the drafts' and the submitted versions', in two
/// queries.
pub fn stored_items(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<StoredItem>> {
    type Row = (String, String, String, String, String, Option<f64>);
    let drafts: Vec<Row> = answers::table
        .inner_join(responses::table.on(responses::id.eq(answers::response_id)))
        .filter(responses::survey_id.eq(survey_id))
        .select((
            answers::response_id,
            responses::country_iso3,
            answers::question_id,
            answers::item,
            answers::value,
            answers::num,
        ))
        .load(conn)?;
    let versions: Vec<(i32, Row)> = version_answers::table
        .inner_join(responses::table.on(responses::id.eq(version_answers::response_id)))
        .filter(responses::survey_id.eq(survey_id))
        .select((
            version_answers::version,
            (
                version_answers::response_id,
                responses::country_iso3,
                version_answers::question_id,
                version_answers::item,
                version_answers::value,
                version_answers::num,
            ),
        ))
        .load(conn)?;
    let item = |version: Option<i32>,
                (response_id, country, question_id, item, value, num): Row| {
        StoredItem {
            response_id,
            country,
            version,
            question_id,
            item,
            value,
            num,
        }
    };
    let mut out: Vec<StoredItem> = drafts.into_iter().map(|r| item(None, r)).collect();
    out.extend(versions.into_iter().map(|(v, r)| item(Some(v), r)));
    Ok(out)
}

/// A change accepted at start, to be recorded.
pub struct NewChange<'a> {
    pub survey_id: &'a str,
    pub from_version: &'a str,
    pub to_version: &'a str,
    pub accepted_orphans: bool,
    pub report: &'a str,
    pub now: NaiveDateTime,
}

/// Apply what a change does to the stored answers and record it; call in the transaction
/// that records the new version. Rows are moved where the file maps them (`[[renamed]]`,
/// `was`), orphaned draft rows are hidden (never deleted), each draft's hidden questions are
/// brought in line with the new conditions, and the responses touched get their notices.
pub fn apply(conn: &mut DbConn, impact: &Impact, change: &NewChange) -> QueryResult<String> {
    super::write_statement(conn, |conn| {
        let id = new_id();
        diesel::insert_into(definition_changes::table)
            .values((
                definition_changes::id.eq(&id),
                definition_changes::survey_id.eq(change.survey_id),
                definition_changes::from_version.eq(change.from_version),
                definition_changes::to_version.eq(change.to_version),
                definition_changes::changed_at.eq(change.now),
                definition_changes::accepted_orphans.eq(change.accepted_orphans),
                definition_changes::report.eq(change.report),
            ))
            .execute(conn)?;
        move_rows(conn, &impact.remaps)?;
        // The secretariat's queries and the hidden-question records follow a renamed question.
        let survey_responses = responses::table
            .filter(responses::survey_id.eq(change.survey_id))
            .select(responses::id);
        for (from, to) in &impact.changes.renamed_questions {
            diesel::update(
                queries::table
                    .filter(queries::question_id.eq(from))
                    .filter(queries::response_id.eq_any(survey_responses)),
            )
            .set(queries::question_id.eq(to))
            .execute(conn)?;
            diesel::update(
                hidden_questions::table
                    .filter(hidden_questions::question_id.eq(from))
                    .filter(hidden_questions::response_id.eq_any(survey_responses)),
            )
            .set(hidden_questions::question_id.eq(to))
            .execute(conn)?;
        }
        for (response, hidden) in &impact.hidden {
            super::answers::sync_hidden(conn, response, hidden)?;
        }
        set_orphans_aside(conn, &id, &impact.orphan_rows)?;
        for (response, sections) in &impact.notices {
            for section in sections {
                diesel::insert_into(definition_notices::table)
                    .values((
                        definition_notices::change_id.eq(&id),
                        definition_notices::response_id.eq(response),
                        definition_notices::section_id.eq(section),
                        definition_notices::noted_at.eq(change.now),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(id)
    })
}

/// Rows moved the same way: (version, old question, old item, old and new value when the value
/// changes, new question, new item, new section).
type Move<'a> = (
    Option<i32>,
    &'a str,
    &'a str,
    Option<(&'a str, &'a str)>,
    &'a str,
    &'a str,
    &'a str,
);

/// How many responses one moving statement names.
const MOVE_CHUNK: usize = 500;

/// Move the rows a mapping places elsewhere: one statement per way of moving (a renamed option
/// or question, per version) and 500 responses, not one per row. A response holds one row per
/// (version, question, item), and no mapping moves a row onto a place another one moves from
/// (a `was` or a `[[renamed]]` `from` is never a current code or question), so the order of the
/// statements does not matter.
fn move_rows(conn: &mut DbConn, remaps: &[Remap]) -> QueryResult<()> {
    let mut moves: BTreeMap<Move, Vec<&str>> = BTreeMap::new();
    for m in remaps {
        let r = &m.row;
        let value = (r.value != m.value).then_some((r.value.as_str(), m.value.as_str()));
        let key = (
            r.version,
            r.question_id.as_str(),
            r.item.as_str(),
            value,
            m.question_id.as_str(),
            m.item.as_str(),
            m.section_id.as_str(),
        );
        moves.entry(key).or_default().push(r.response_id.as_str());
    }
    for ((version, question, item, value, to, to_item, section), ids) in moves {
        for chunk in ids.chunks(MOVE_CHUNK) {
            match version {
                None => {
                    let rows = answers::table
                        .filter(answers::response_id.eq_any(chunk))
                        .filter(answers::question_id.eq(question))
                        .filter(answers::item.eq(item));
                    let place = (
                        answers::question_id.eq(to),
                        answers::item.eq(to_item),
                        answers::section_id.eq(section),
                    );
                    match value {
                        Some((old, new)) => diesel::update(rows.filter(answers::value.eq(old)))
                            .set((place, answers::value.eq(new)))
                            .execute(conn)?,
                        None => diesel::update(rows).set(place).execute(conn)?,
                    };
                }
                Some(v) => {
                    let rows = version_answers::table
                        .filter(version_answers::response_id.eq_any(chunk))
                        .filter(version_answers::version.eq(v))
                        .filter(version_answers::question_id.eq(question))
                        .filter(version_answers::item.eq(item));
                    let place = (
                        version_answers::question_id.eq(to),
                        version_answers::item.eq(to_item),
                    );
                    match value {
                        Some((old, new)) => {
                            diesel::update(rows.filter(version_answers::value.eq(old)))
                                .set((place, version_answers::value.eq(new)))
                                .execute(conn)?
                        }
                        None => diesel::update(rows).set(place).execute(conn)?,
                    };
                }
            }
        }
    }
    Ok(())
}

/// Copy each orphaned draft row, as it is, into `orphaned_answers`. An answer to a removed
/// question then stays in `answers`, hidden (no form shows it, no save touches it); one to a
/// question still asked (an option removed, a type changed, mapped onto an answer already
/// given) leaves `answers`, where its form would show it as something else or drop it at the
/// next save of the section: its copy is what keeps it.
fn set_orphans_aside(
    conn: &mut DbConn,
    change: &str,
    rows: &[(Orphan, StoredItem)],
) -> QueryResult<()> {
    for (why, r) in rows {
        let mut sql = Sql::new(
            "INSERT INTO orphaned_answers (change_id, response_id, question_id, item, value, num, \
             section_id, updated_at, updated_by, reason) SELECT ",
        );
        sql.bind(change);
        sql.push(
            ", response_id, question_id, item, value, num, section_id, updated_at, updated_by, ",
        );
        sql.bind(why.code());
        sql.push(" FROM answers WHERE response_id = ");
        sql.bind(r.response_id.as_str());
        sql.push(" AND question_id = ");
        sql.bind(r.question_id.as_str());
        sql.push(" AND item = ");
        sql.bind(r.item.as_str());
        sql.query().execute(conn)?;
        let row = answers::table
            .filter(answers::response_id.eq(&r.response_id))
            .filter(answers::question_id.eq(&r.question_id))
            .filter(answers::item.eq(&r.item));
        if *why == Orphan::RemovedQuestion {
            diesel::update(row)
                .set(answers::visible.eq(false))
                .execute(conn)?;
        } else {
            diesel::delete(row).execute(conn)?;
        }
    }
    Ok(())
}

/// A change as recorded.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = definition_changes)]
pub struct ChangeRow {
    pub id: String,
    pub survey_id: String,
    pub from_version: String,
    pub to_version: String,
    pub changed_at: NaiveDateTime,
    pub accepted_orphans: bool,
    pub report: String,
}

/// The changes recorded for a survey, oldest first.
pub fn changes(conn: &mut DbConn, survey_id: &str) -> QueryResult<Vec<ChangeRow>> {
    definition_changes::table
        .filter(definition_changes::survey_id.eq(survey_id))
        .order(definition_changes::changed_at)
        .select(ChangeRow::as_select())
        .load(conn)
}

/// The sections a response was asked to look at again, each with the latest time it was,
/// in one query.
pub fn notices(conn: &mut DbConn, response_id: &str) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    let rows: Vec<(String, NaiveDateTime)> = definition_notices::table
        .filter(definition_notices::response_id.eq(response_id))
        .order(definition_notices::noted_at.desc())
        .select((definition_notices::section_id, definition_notices::noted_at))
        .load(conn)?;
    let mut latest: Vec<(String, NaiveDateTime)> = Vec::new();
    let mut seen = HashSet::new();
    for (section, at) in rows {
        if seen.insert(section.clone()) {
            latest.push((section, at));
        }
    }
    Ok(latest)
}
